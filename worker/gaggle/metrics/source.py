"""``Source``: where the figures of a run in progress are read from — the read model that
Prometheus, /summary, the report's timeline and the operator's status share.

It lives with the metrics, not with any one reader, so a reader depends on the metrics layer
rather than on another reader (the timeline once imported the Prometheus module for this type).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from gaggle.metrics.aggregate import Metrics, TaskNames
from gaggle.metrics.cardinality import NAMES_LIMIT
from gaggle.metrics.stats import Stats

K = TypeVar("K")


@dataclass
class Source:
    metrics: Callable[[], Metrics]  # everything so far, hatching phase included
    users: Callable[[], int]
    workers: Callable[[], tuple[int, int]] = lambda: (0, 0)  # (connected, lost)
    task_names: Callable[[], TaskNames] = lambda: []
    loop_lags: Callable[[], dict[int, float]] = lambda: {}  # worker number → seconds
    loop_lag: Callable[[], float] = lambda: 0.0  # this process's loop, its recent worst (s)
    loop_lag_max: Callable[[], float] = lambda: 0.0  # the run's worst so far, workers' too
    users_target: Callable[[], int] | None = None  # users the load asks for (None: = users)
    stages: Callable[[], list[tuple[float, str]]] = lambda: []  # (epoch seconds, label)
    # each change through the control API: (epoch seconds, what, label)
    changes: Callable[[], list[tuple[float, str, str]]] = lambda: []
    arrival_rate: Callable[[], float] = lambda: 0.0  # arrivals/s the open model asks for now
    # a reader's own feed of what arrived since its previous call (``RunTotals.follow``);
    # None: one that differences ``metrics`` (a copy of every row a call: tests, small runs)
    follow: Callable[[], Callable[[], list[Metrics]]] | None = None
    names_limit: int = NAMES_LIMIT  # /metrics: series for the busiest names, the rest folded
    # every request row merged, hatching phase included, kept as deltas arrive
    # (``RunTotals.requests``); None: a reader merges the rows itself
    requests: Callable[[], Stats] | None = None
    # everything so far but the request rows (``RunTotals.counts``); None: ``metrics``
    counts: Callable[[], Metrics] | None = None

    def counted(self) -> Metrics:
        """What a reader that comes every second reads beside the request rows (tasks, errors,
        the schedule, the abandoned): its ``requests`` are not to be read — they may lag."""
        return self.counts() if self.counts is not None else self.metrics()

    def feed(self) -> Callable[[], list[Metrics]]:
        """A reader's own feed: each call, the request and task rows' gains since its previous
        call (the first: everything so far), as deltas to read, not change."""
        return self.follow() if self.follow is not None else differences(self.metrics)


def differences(metrics: Callable[[], Metrics]) -> Callable[[], list[Metrics]]:
    """A feed made by differencing ``metrics`` with a copy of what the previous call saw."""
    seen = Metrics()

    def take() -> list[Metrics]:
        now, change = metrics(), Metrics()
        _rows_gained(now.requests, seen.requests, change.requests)
        _rows_gained(now.tasks, seen.tasks, change.tasks)
        return [change]

    return take


def _rows_gained(rows: dict[K, Stats], seen: dict[K, Stats], gains: dict[K, Stats]) -> None:
    for key, stats in rows.items():
        gain = _gain(stats, seen.get(key))
        if gain is not None:
            gains[key] = gain
            seen[key] = stats.copy()


def _gain(now: Stats, before: Stats | None) -> Stats | None:
    """What a row gained since ``before`` (None: nothing)."""
    if before is None:
        return now.copy() if now.count or now.histogram.total else None
    gain = Stats()
    gain.success_count = now.success_count - before.success_count
    gain.fail_count = now.fail_count - before.fail_count
    gain.sum_us = now.sum_us - before.sum_us
    gain.min_us, gain.max_us = now.min_us, now.max_us
    old = before.histogram.counts
    gain.histogram.counts = {
        i: d for i, n in now.histogram.counts.items() if (d := n - old.get(i, 0))
    }
    gain.histogram.total = now.histogram.total - before.histogram.total
    codes = before.status_codes
    gain.status_codes = {c: d for c, n in now.status_codes.items() if (d := n - codes.get(c, 0))}
    changed = gain.success_count or gain.fail_count or gain.histogram.total or gain.status_codes
    return gain if changed else None
