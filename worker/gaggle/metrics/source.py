"""``Source``: where the figures of a run in progress are read from — the read model that
Prometheus, /summary, the report's timeline and the operator's status share.

It lives with the metrics, not with any one reader, so a reader depends on the metrics layer
rather than on another reader (the timeline once imported the Prometheus module for this type).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gaggle.metrics.aggregate import Metrics, TaskNames
from gaggle.metrics.cardinality import NAMES_LIMIT


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
    # None: the reader differences ``metrics`` itself
    follow: Callable[[], Callable[[], Metrics]] | None = None
    names_limit: int = NAMES_LIMIT  # /metrics: series for the busiest names, the rest folded
