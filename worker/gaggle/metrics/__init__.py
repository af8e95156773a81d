"""The numbers: records -> accumulators -> tallies -> read models; the bottom layer of the engine.

- ``record``: ``RequestRecord`` and ``TaskRecord``, the one record each request and task makes.
- ``histogram``, ``stats``: exact mergeable accumulators (the histogram's error bound is stated).
- ``aggregate``: the ``Aggregator`` the hot path writes, and ``Metrics`` snapshots it drains into.
- ``ledger``: the one reader of the aggregator: the run's totals since start and since reset.
- ``source``, ``window``: read models (what a reader asks of a run; a sliding window).
- ``thresholds``: ``--threshold`` rules and the verdict they give on a run's numbers.
"""

from gaggle.metrics.aggregate import Aggregator, Metrics, NullAggregator
from gaggle.metrics.histogram import RELATIVE_ERROR, Histogram
from gaggle.metrics.record import REQUEST_LOG_FIELDS, RequestRecord, TaskRecord
from gaggle.metrics.stats import Stats

__all__ = [
    "RELATIVE_ERROR",
    "REQUEST_LOG_FIELDS",
    "Aggregator",
    "Histogram",
    "Metrics",
    "NullAggregator",
    "RequestRecord",
    "Stats",
    "TaskRecord",
]
