"""The numbers: records -> accumulators -> tallies -> read models; the bottom layer of the engine.

- ``record``: ``RequestRecord`` and ``TaskRecord``, the one record each request and task makes.
- ``histogram``, ``stats``: exact mergeable accumulators (the histogram's error bound is stated).
- ``aggregate``: the ``Aggregator`` the hot path writes, and ``Metrics`` snapshots it drains into.
- ``ledger``: the one reader of the aggregator: the run's totals since start and since reset.
- ``source``, ``window``: read models (what a reader asks of a run; a sliding window).
- ``thresholds``: ``--threshold`` rules (regression rules too: ``p95 < baseline + 10%``) and the
  verdict they give on a run's numbers.
- ``cardinality``: many request names: the one warning, and the busiest-N view of the tables.
"""

from gaggle.metrics.aggregate import (
    MAX_DISTINCT_ERRORS,
    Aggregator,
    Metrics,
    NullAggregator,
    RequestKey,
    TaskNames,
    add_error,
    request_order,
    task_label,
)
from gaggle.metrics.cardinality import (
    NAMES_LIMIT,
    OTHER_NAMES,
    Busiest,
    NameGuard,
    WatchedTally,
    busiest,
    busiest_keys,
    folded_line,
    name_pattern,
)
from gaggle.metrics.histogram import BUCKET_KEYS, RELATIVE_ERROR, Histogram, bucket_bounds
from gaggle.metrics.ledger import Ledger, RunTotals
from gaggle.metrics.record import REQUEST_LOG_FIELDS, RequestRecord, TaskRecord
from gaggle.metrics.source import Source
from gaggle.metrics.stats import NO_MIN, Stats, ms
from gaggle.metrics.thresholds import (
    BASELINE_PERCENTILES,
    OPERATORS,
    BaselineValues,
    Threshold,
    ThresholdError,
    Verdict,
    evaluate,
    overall,
    parse_threshold,
    verdict_rows,
)
from gaggle.metrics.window import RollingWindow

__all__ = [
    "BASELINE_PERCENTILES",
    "BUCKET_KEYS",
    "MAX_DISTINCT_ERRORS",
    "NAMES_LIMIT",
    "NO_MIN",
    "OPERATORS",
    "OTHER_NAMES",
    "RELATIVE_ERROR",
    "REQUEST_LOG_FIELDS",
    "Aggregator",
    "BaselineValues",
    "Busiest",
    "Histogram",
    "Ledger",
    "Metrics",
    "NameGuard",
    "NullAggregator",
    "RequestKey",
    "RequestRecord",
    "RollingWindow",
    "RunTotals",
    "Source",
    "Stats",
    "TaskNames",
    "TaskRecord",
    "Threshold",
    "ThresholdError",
    "Verdict",
    "WatchedTally",
    "add_error",
    "bucket_bounds",
    "busiest",
    "busiest_keys",
    "evaluate",
    "folded_line",
    "ms",
    "name_pattern",
    "overall",
    "parse_threshold",
    "request_order",
    "task_label",
    "verdict_rows",
]
