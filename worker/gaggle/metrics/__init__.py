"""The numbers: records -> accumulators -> tallies -> read models; the bottom layer of the engine.

- ``record``: ``RequestRecord`` and ``TaskRecord``, the one record each request and task makes.
- ``histogram``, ``stats``: exact mergeable accumulators (the histogram's error bound is stated).
- ``aggregate``: the ``Aggregator`` the hot path writes, and ``Metrics`` snapshots it drains into.
- ``ledger``: the one reader of the aggregator: the run's totals since start and since reset.
- ``source``, ``window``: read models (what a reader asks of a run; a sliding window).
- ``thresholds``: ``--threshold`` rules and the verdict they give on a run's numbers.
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
from gaggle.metrics.histogram import RELATIVE_ERROR, Histogram, bucket_bounds
from gaggle.metrics.ledger import Ledger
from gaggle.metrics.record import REQUEST_LOG_FIELDS, RequestRecord, TaskRecord
from gaggle.metrics.source import Source
from gaggle.metrics.stats import NO_MIN, Stats, ms
from gaggle.metrics.thresholds import (
    OPERATORS,
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
    "MAX_DISTINCT_ERRORS",
    "NO_MIN",
    "OPERATORS",
    "RELATIVE_ERROR",
    "REQUEST_LOG_FIELDS",
    "Aggregator",
    "Histogram",
    "Ledger",
    "Metrics",
    "NullAggregator",
    "RequestKey",
    "RequestRecord",
    "RollingWindow",
    "Source",
    "Stats",
    "TaskNames",
    "TaskRecord",
    "Threshold",
    "ThresholdError",
    "Verdict",
    "add_error",
    "bucket_bounds",
    "evaluate",
    "ms",
    "overall",
    "parse_threshold",
    "request_order",
    "task_label",
    "verdict_rows",
]
