"""The run's totals on this machine, and the aggregator's one reader.

``Aggregator.drain()`` takes: what it hands over is gone from the aggregator. With two callers —
the tables or a /metrics scrape, and a worker shipping deltas to its manager — each would take
requests from the other (a worker scraped every second handed most of its counts to its own
page). So only the ledger drains, and it fans every delta out in one place, as vegeta's one loop
over its results channel does: into the totals, which any number of readers read without taking,
and, for a worker, into the outgoing delta that ``take_delta`` hands to the manager link.
"""

from __future__ import annotations

from gaggle.metrics.aggregate import Aggregator, Metrics


class Ledger:
    __slots__ = ("_aggregator", "_outgoing", "_shipping", "_totals")

    def __init__(self, aggregator: Aggregator, *, shipping: bool = False) -> None:
        self._aggregator = aggregator
        self._shipping = shipping  # a worker: keep what its manager has not been sent yet
        self._totals = Metrics()
        self._outgoing = Metrics()

    def _collect(self) -> None:
        delta = self._aggregator.drain()
        if delta.is_empty():
            return
        self._totals.merge(delta)
        if not self._shipping:
            return
        if self._outgoing.is_empty():
            self._outgoing = delta  # nobody else holds it: no copy needed
        else:
            self._outgoing.merge(delta)

    def metrics(self) -> Metrics:
        """Everything counted since the last reset (read it, don't change it)."""
        self._collect()
        return self._totals

    def reset(self) -> Metrics:
        """Hand over what was counted (e.g. the hatching phase) and count from zero again."""
        self._collect()
        counted, self._totals = self._totals, Metrics()
        return counted

    def take_delta(self) -> Metrics:
        """What arrived since the last call, however often the totals were read meanwhile."""
        if not self._shipping:
            raise RuntimeError("take_delta() on a ledger that does not ship (not a worker)")
        self._collect()
        delta, self._outgoing = self._outgoing, Metrics()
        return delta
