"""The run's totals on this machine, and the aggregator's one reader.

``Aggregator.drain()`` takes: what it hands over is gone from the aggregator. With two callers —
the tables or a /metrics scrape, and a worker shipping deltas to its manager — each would take
requests from the other (a worker scraped every second handed most of its counts to its own
page). So only the ledger drains, and it fans every delta out in one place, as vegeta's one loop
over its results channel does: into the totals since the reset, into the whole run's
(``RunTotals``), which any number of readers read without taking, and, for a worker, into the
outgoing delta that ``take_delta`` hands to the manager link.
"""

from __future__ import annotations

from collections.abc import Callable

from gaggle.metrics.aggregate import Aggregator, Metrics
from gaggle.metrics.stats import Stats

FEED_MAX = 64  # deltas a feed keeps as references before folding them into one


class RunTotals:
    """The whole run's figures — the hatching phase and since — kept up to date as deltas
    arrive, so that the readers that come every second (the report's timeline, the live view,
    a scrape, /summary, the operator's status) pay for what changed, not for what exists.

    Re-merging the hatching phase into a fresh copy on every read cost 0.1-0.6 s with 200 names
    of a wide latency spread, on the event loop. Here a read is a reference to live objects that
    later deltas update: read them, don't change them. Until a reset sets the hatching phase
    aside, the run's totals *are* the owner's totals since the reset (no second merge); after
    it, each delta is merged into both. The aggregate of every request row (the live view's
    rates and latency) and the feeds are kept only once someone asked for them.
    """

    __slots__ = ("_feeds", "_metrics", "_own", "_refresh", "_requests")

    def __init__(self, counting: Metrics, refresh: Callable[[], None]) -> None:
        self._metrics = counting  # the owner's totals since the reset, until one happens
        self._own = False
        self._refresh = refresh  # the owner brings these up to date (drains, writes back)
        self._requests: Stats | None = None
        self._feeds: list[_Feed] = []

    # --- what the owner (a ``Ledger``, the manager's merged tally) tells -------------------
    def add(self, delta: Metrics, *, spare: bool = True) -> None:
        """``delta`` arrived (the owner's totals since the reset hold it already). ``spare``:
        nobody will change it, so the feeds may share it instead of a copy."""
        if self._own:
            self._metrics.merge(delta)
        if self._requests is not None:
            requests = self._requests
            for stats in delta.requests.values():
                requests.merge(stats)
        if self._feeds:
            shared = delta if spare else Metrics.combined(delta)
            for feed in self._feeds:
                feed.add(shared)

    def set_aside(self) -> None:
        """The owner's totals go to the hatching phase and it counts from zero: the run's own
        totals go on from a copy (once, at the reset)."""
        if not self._own:
            self._metrics, self._own = Metrics.combined(self._metrics), True

    # --- what a reader asks -------------------------------------------------------------------
    def metrics(self) -> Metrics:
        """Everything so far, hatching phase included (live: read it, don't change it)."""
        self._refresh()
        return self._metrics

    def requests(self) -> Stats:
        """Every request row merged, hatching phase included (live: read it, don't change it)."""
        self._refresh()
        if self._requests is None:  # the first ask: one pass, then each delta adds its rows
            self._requests = self._metrics.aggregated_requests()
        return self._requests

    def follow(self) -> Callable[[], list[Metrics]]:
        """A reader's own feed of changes: each call returns the deltas that arrived since its
        previous call, in order (the first: everything so far), so a reader that needs each
        interval's figures (the report's timeline, a scrape) does not difference every row's
        histogram itself. The deltas are shared by every feed: read them, don't change them."""
        self._refresh()
        feed = _Feed(Metrics.combined(self._metrics))
        self._feeds.append(feed)

        def take() -> list[Metrics]:
            self._refresh()
            deltas, feed.deltas = feed.deltas, []
            return deltas

        return take


class _Feed:
    """A reader's deltas not yet taken: references, not merges (merging into an empty copy for
    each reader cost more than the reader's own pass), folded into one copy only when a reader
    lags by ``FEED_MAX`` deltas (one scrape and never another must not hold the whole run)."""

    __slots__ = ("deltas",)

    def __init__(self, first: Metrics) -> None:
        self.deltas = [first]

    def add(self, delta: Metrics) -> None:
        self.deltas.append(delta)
        if len(self.deltas) > FEED_MAX:
            self.deltas = [Metrics.combined(*self.deltas)]


class Ledger:
    __slots__ = ("_aggregator", "_outgoing", "_run", "_shipping", "_totals")

    def __init__(self, aggregator: Aggregator, *, shipping: bool = False) -> None:
        self._aggregator = aggregator
        self._shipping = shipping  # a worker: keep what its manager has not been sent yet
        self._totals = Metrics()
        self._outgoing = Metrics()
        self._run = RunTotals(self._totals, self._collect)

    def _collect(self) -> None:
        delta = self._aggregator.drain()
        if delta.is_empty():
            return
        self._totals.merge(delta)
        kept = self._shipping and self._outgoing.is_empty()
        if kept:
            self._outgoing = delta  # nobody else holds it (a merge copies what it adds)
        elif self._shipping:
            self._outgoing.merge(delta)
        self._run.add(delta, spare=not kept)

    def metrics(self) -> Metrics:
        """Everything counted since the last reset (read it, don't change it)."""
        self._collect()
        return self._totals

    def run_totals(self) -> RunTotals:
        """The whole run's totals, the hatching phase included, whatever the resets."""
        return self._run

    def reset(self) -> Metrics:
        """Hand over what was counted (e.g. the hatching phase) and count from zero again."""
        self._collect()
        self._run.set_aside()
        counted, self._totals = self._totals, Metrics()
        return counted

    def take_delta(self) -> Metrics:
        """What arrived since the last call, however often the totals were read meanwhile."""
        if not self._shipping:
            raise RuntimeError("take_delta() on a ledger that does not ship (not a worker)")
        self._collect()
        delta, self._outgoing = self._outgoing, Metrics()
        return delta
