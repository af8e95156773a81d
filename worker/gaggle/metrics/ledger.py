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

from gaggle.metrics.aggregate import Aggregator, Metrics, RequestKey, merge_rows
from gaggle.metrics.stats import Stats

FEED_MAX = 64  # deltas a feed keeps as references before folding them into one


class RunTotals:
    """The whole run's figures — the hatching phase and since — kept up to date as deltas
    arrive, so that the readers that come every second (the report's timeline, the live view,
    a scrape, the operator's status) pay for what changed, not for what exists.

    Re-merging the hatching phase into a fresh copy on every read cost 0.1-0.6 s with 200 names
    of a wide latency spread, on the event loop. Here a read is a reference to live objects that
    later deltas update: read them, don't change them. Until a reset sets the hatching phase
    aside, the run's totals *are* the owner's totals since the reset (no second merge).

    After it, the request rows are the costly part (a delta's histograms merged a second time),
    and no reader that comes every second needs them: a scrape and -R follow a feed, the live
    view reads the aggregate (``requests``), the rest read ``counts`` (tasks, errors, the
    schedule). So the whole run's request rows are kept only while somebody reads them
    (``metrics``): the deltas wait as references and are merged at the next read, so a reader
    that comes regularly pays for what changed since its previous read; when ``FEED_MAX``
    deltas went unread, the rows are let go and the next read makes them again from the
    hatching phase and the owner's totals (one pass, as the final report's read does anyway).
    The aggregate and the feeds are kept only once someone asked for them.
    """

    __slots__ = (
        "_counts",
        "_feeds",
        "_hatch",
        "_metrics",
        "_pending",
        "_refresh",
        "_requests",
        "_rows",
        "_since",
    )

    def __init__(self, counting: Metrics, refresh: Callable[[], None]) -> None:
        self._metrics = counting  # the owner's totals since the reset, until one happens
        self._refresh = refresh  # the owner brings these up to date (drains, writes back)
        self._requests: Stats | None = None
        self._feeds: list[_Feed] = []
        # after the reset: the hatching phase, the owner's totals since, and the whole run's
        # counts beside the request rows, its request rows (None: let go) and their waiting deltas
        self._hatch: Metrics | None = None
        self._since = counting
        self._counts = counting
        self._rows: dict[RequestKey, Stats] | None = None
        self._pending: list[Metrics] = []

    # --- what the owner (a ``Ledger``, the manager's merged tally) tells -------------------
    def add(self, delta: Metrics, *, spare: bool = True) -> None:
        """``delta`` arrived (the owner's totals since the reset hold it already). ``spare``:
        nobody will change it, so the feeds may share it instead of a copy."""
        if self._requests is not None:
            requests = self._requests
            for stats in delta.requests.values():
                requests.merge(stats)
        shared = delta if spare or not (self._feeds or self._rows is not None) else None
        if shared is None:
            shared = Metrics.combined(delta)
        if self._hatch is not None:
            self._counts.merge(delta, requests=False)
            if self._rows is not None:
                self._pending.append(shared)
                if len(self._pending) > FEED_MAX:  # nobody reads them: let them go
                    self._rows, self._pending = None, []
        for feed in self._feeds:
            feed.add(shared)

    def set_aside(self, since: Metrics) -> None:
        """The owner's totals go to the hatching phase and it counts from zero in ``since``:
        the run's counts go on from a copy (once, at the reset)."""
        if self._hatch is None:
            self._hatch, self._since = self._metrics, since
            self._counts = Metrics()
            self._counts.merge(self._hatch, requests=False)
            self._metrics = Metrics()

    # --- what a reader asks -------------------------------------------------------------------
    def counts(self) -> Metrics:
        """Everything so far but the request rows (tasks, errors, the schedule, what the stop
        timeout abandoned), hatching phase included; its ``requests`` are not to be read (use
        ``metrics``). Live: read it, don't change it."""
        self._refresh()
        return self._counts

    def metrics(self) -> Metrics:
        """Everything so far, hatching phase included (live: read it, don't change it)."""
        self._refresh()
        if self._hatch is None:
            return self._metrics
        rows = self._rows
        if rows is None:  # one pass over both phases' rows
            rows = {key: stats.copy() for key, stats in self._hatch.requests.items()}
            merge_rows(rows, self._since.requests)
            self._rows = rows
        else:
            for delta in self._pending:
                merge_rows(rows, delta.requests)
        self._pending = []
        whole, counts = self._metrics, self._counts
        whole.requests, whole.tasks, whole.errors, whole.lag = (
            rows,
            counts.tasks,
            counts.errors,
            counts.lag,
        )
        whole.dropped = counts.dropped
        whole.abandoned_requests = counts.abandoned_requests
        whole.abandoned_tasks = counts.abandoned_tasks
        return whole

    def requests(self) -> Stats:
        """Every request row merged, hatching phase included (live: read it, don't change it)."""
        self._refresh()
        if self._requests is None:  # the first ask: one pass, then each delta adds its rows
            self._requests = self.metrics().aggregated_requests()
        return self._requests

    def follow(self) -> Callable[[], list[Metrics]]:
        """A reader's own feed of changes: each call returns the deltas that arrived since its
        previous call, in order (the first: everything so far), so a reader that needs each
        interval's figures (the report's timeline, a scrape) does not difference every row's
        histogram itself. The deltas are shared by every feed: read them, don't change them."""
        feed = _Feed(Metrics.combined(self.metrics()))
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
        counted, self._totals = self._totals, Metrics()
        self._run.set_aside(self._totals)
        return counted

    def take_delta(self) -> Metrics:
        """What arrived since the last call, however often the totals were read meanwhile."""
        if not self._shipping:
            raise RuntimeError("take_delta() on a ledger that does not ship (not a worker)")
        self._collect()
        delta, self._outgoing = self._outgoing, Metrics()
        return delta
