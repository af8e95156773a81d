"""Metric records, mergeable accumulators and the aggregator: the bottom layer of the engine."""

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
