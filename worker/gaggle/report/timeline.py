"""Figures over time for the report's charts: sampled once a second, off the hot path.

Each second the sampler reads the cumulative metrics — the same ones the tables and /metrics read;
on the manager, the merge of every worker's deltas — and keeps the difference from its previous
reading: requests, failures, and response-time percentiles from that second's histogram delta,
plus users and workers. Users' code never sees it: the cost is per second, not per request. A run
hands the sampler a feed of what arrived since its previous reading (``Source.follow``), so a
second costs what changed in it; without one, the sampler differences every row itself.

Memory and file size are bounded: a ``Series`` holds at most ``limit`` points. When full,
neighbouring points merge pairwise and the step doubles: counts add, percentiles keep the higher
value (a point's percentile is that of its slowest second, so a spike stays visible), users and
workers keep the later value. That rule gives the same result however often points were merged.
"""

from __future__ import annotations

import math
import time
from array import array
from collections.abc import Callable, Mapping

from gaggle.metrics import Histogram, Metrics, RequestKey, Source

SUM, MAX, LAST = "sum", "max", "last"
# A column is (field,) for the run's totals or (method, name, field) for one request.
FIELDS = {
    "seconds": SUM,
    "requests": SUM,
    "failures": SUM,
    "p50_ms": MAX,
    "p95_ms": MAX,
    "p99_ms": MAX,
    "users": LAST,
    "users_target": LAST,  # what the load asks for (a plan's stage, a change): beside the users
    "workers": LAST,
    "arrival_rate": LAST,  # an open model's asked rate, and what came of it each second
    "arrivals_started": SUM,
    "arrivals_dropped": SUM,
}
# the run's own columns, not a request's
RUN_ONLY = (
    "users",
    "users_target",
    "workers",
    "arrival_rate",
    "arrivals_started",
    "arrivals_dropped",
)
QUANTILES = {"p50_ms": 0.5, "p95_ms": 0.95, "p99_ms": 0.99}
TOTAL_LIMIT = 3600  # points for the run's totals: one hour at one second each
REQUEST_LIMIT = 400  # points per request name: 200 names stay well under the size budget
MAX_REQUEST_SERIES = 250  # request names with their own series; more are counted, not drawn
NAN = math.nan

Column = tuple[str, ...]


def _combine(kind: str, old: float, new: float) -> float:
    if kind == SUM:
        return old + new
    if kind == MAX:
        return new if old != old or new > old else old  # NaN (no data) loses
    return new if new == new else old


def _empty(kind: str) -> float:
    return 0.0 if kind == SUM else NAN


class Series:
    """Columns sampled together, at most ``limit`` points of ``step`` samples each."""

    def __init__(self, limit: int) -> None:
        self.limit = max(2, limit - limit % 2)  # even: halving pairs every point
        self.step = 1
        self.time = array("d")  # each point's start, epoch seconds
        self.columns: dict[Column, array[float]] = {}
        self._pending: dict[Column, float] = {}
        self._pending_time = 0.0
        self._pending_samples = 0

    def add(self, at: float, values: Mapping[Column, float]) -> None:
        if not self._pending_samples:
            self._pending_time = at
        pending = self._pending
        for key, value in values.items():
            kind = FIELDS[key[-1]]
            pending[key] = _combine(kind, pending.get(key, _empty(kind)), value)
        self._pending_samples += 1
        if self._pending_samples >= self.step:
            self.flush()

    def flush(self) -> None:
        """Close the pending point (at the end of a run it may hold fewer samples)."""
        if not self._pending_samples:
            return
        for key in self._pending.keys() - self.columns.keys():
            self.columns[key] = array("d", [_empty(FIELDS[key[-1]])] * len(self.time))
        self.time.append(self._pending_time)
        for key, column in self.columns.items():
            column.append(self._pending.get(key, _empty(FIELDS[key[-1]])))
        self._pending.clear()
        self._pending_samples = 0
        if len(self.time) >= self.limit:
            self._halve()

    def _halve(self) -> None:
        self.time = self.time[::2]
        for key, column in self.columns.items():
            kind = FIELDS[key[-1]]
            self.columns[key] = array(
                "d", (_combine(kind, a, b) for a, b in zip(column[::2], column[1::2], strict=True))
            )
        self.step *= 2

    def column(self, key: Column) -> list[float | None]:
        """Plain values for JSON: NaN (no request that second) becomes None."""
        values = self.columns.get(key)
        if values is None:
            return [_none(_empty(FIELDS[key[-1]]))] * len(self.time)
        if FIELDS[key[-1]] == MAX:
            return [_none(round(v, 3)) for v in values]
        return [_none(v) for v in values]


def _none(value: float) -> float | None:
    if value != value:
        return None
    return int(value) if value.is_integer() else value


class Timeline:
    """The sampler: call ``sample()`` about once a second; it measures the real interval."""

    def __init__(
        self,
        source: Source,
        *,
        total_limit: int = TOTAL_LIMIT,
        request_limit: int = REQUEST_LIMIT,
        clock: Callable[[], float] = time.perf_counter,  # for intervals
        wall: Callable[[], float] = time.time,  # for the points' instants
    ) -> None:
        self.source, self.clock, self.wall = source, clock, wall
        self.totals = Series(total_limit)
        self.requests = Series(request_limit)
        self.request_names: list[RequestKey] = []  # with a series, in order of appearance
        self._named: set[RequestKey] = set()
        self.omitted: set[RequestKey] = set()
        self.started: float | None = None  # the first active second, epoch seconds
        self.max_workers = 0
        self._changes = source.feed()
        self._total: tuple[int, int, dict[int, int]] = (0, 0, {})  # the aggregate read last
        self._arrivals = (0, 0)  # (started, dropped) at the previous reading
        self._last_clock = clock()
        self._last_wall = wall()

    def sample(self) -> None:
        clock, wall = self.clock(), self.wall()
        seconds, at = clock - self._last_clock, self._last_wall
        self._last_clock, self._last_wall = clock, wall
        users = self.source.users()
        workers = self.source.workers()[0]
        self.max_workers = max(self.max_workers, workers)
        metrics = self.source.counted()
        rows = self._differences()
        target = self.source.users_target() if self.source.users_target else users
        arrivals = (metrics.lag.timed_count, metrics.dropped)
        if self.started is None:
            if not users and not rows:
                return  # before the load starts (a manager waiting for workers)
            self.started = at
        totals: dict[Column, float] = {
            ("seconds",): seconds,
            ("users",): users,
            ("users_target",): target,
            ("workers",): workers,
            ("arrival_rate",): self.source.arrival_rate(),
            ("arrivals_started",): arrivals[0] - self._arrivals[0],
            ("arrivals_dropped",): arrivals[1] - self._arrivals[1],
        }
        self._arrivals = arrivals
        per_request: dict[Column, float] = {("seconds",): seconds}
        count, fails, merged = self._total_gain(rows)
        for key, (requests, failures, counts) in rows.items():
            if key in self.omitted:
                continue
            if key not in self._named:
                if len(self._named) >= MAX_REQUEST_SERIES:
                    self.omitted.add(key)
                    continue
                self._named.add(key)
                self.request_names.append(key)
            per_request[(*key, "requests")] = requests
            per_request[(*key, "failures")] = failures
            for field, value in _percentiles(counts).items():
                per_request[(*key, field)] = value
        totals[("requests",)], totals[("failures",)] = count, fails
        totals.update({(field,): value for field, value in _percentiles(merged).items()})
        self.totals.add(at, totals)
        self.requests.add(at, per_request)

    def _total_gain(
        self, rows: dict[RequestKey, tuple[int, int, dict[int, int]]]
    ) -> tuple[int, int, dict[int, int]]:
        """Every request's (requests, failures, histogram counts) since the previous reading:
        the run's aggregate differenced (its few hundred buckets), where the source keeps one,
        rather than every row's changed buckets merged again (15,000 a second at 15,000
        requests a second of a wide spread)."""
        if self.source.requests is None:
            merged: dict[int, int] = {}
            for _, _, counts in rows.values():
                for index, n in counts.items():
                    merged[index] = merged.get(index, 0) + n
            return sum(r[0] for r in rows.values()), sum(r[1] for r in rows.values()), merged
        now = self.source.requests()
        before_count, before_fails, before = self._total
        counts = now.histogram.counts
        get = before.get
        gained = {index: gain for index, n in counts.items() if (gain := n - get(index, 0))}
        self._total = (now.count, now.fail_count, dict(counts))
        return now.count - before_count, now.fail_count - before_fails, gained

    def _differences(self) -> dict[RequestKey, tuple[int, int, dict[int, int]]]:
        """Per request: (requests, failures, histogram counts) since the previous reading."""
        rows = {}
        deltas = self._changes()
        changes = deltas[0] if len(deltas) == 1 else Metrics.combined(*deltas)
        for key, stats in changes.requests.items():
            change = (stats.count, stats.fail_count, _nonzero(stats.histogram.counts))
            if change[0] or change[1] or change[2]:
                rows[key] = change
        return rows

    def stages(self) -> list[tuple[float, str]]:
        """(epoch seconds, label) of each stage the run's plan or shape began."""
        return list(self.source.stages())

    def changes(self) -> list[tuple[float, str, str]]:
        """(epoch seconds, what, label) of each change made through the control API."""
        return list(self.source.changes())

    def finish(self) -> None:
        """A last sample (the run's final partial second), then close the pending points."""
        self.sample()
        self.totals.flush()
        self.requests.flush()


def _nonzero(counts: dict[int, int]) -> dict[int, int]:
    return counts if all(counts.values()) else {i: n for i, n in counts.items() if n}


def _percentiles(counts: dict[int, int]) -> dict[str, float]:
    """p50/p95/p99 in ms of one interval's histogram delta (within the histogram's 0.4 %)."""
    total = sum(counts.values())
    if total <= 0:
        return {}
    histogram = Histogram()
    histogram.counts, histogram.total = counts, total
    values = histogram.values_at(list(QUANTILES.values()))
    return {field: value / 1000 for field, value in zip(QUANTILES, values, strict=True)}
