"""``Metrics`` to and from the wire's ``Delta``: structured, exact, and cheap per row."""

from __future__ import annotations

from gaggle.metrics.aggregate import Metrics
from gaggle.metrics.histogram import Histogram
from gaggle.metrics.stats import Stats
from gaggle.wire import gaggle_pb2 as wire


def _row(stats: Stats, row: wire.RowStats) -> None:
    row.success_count = stats.success_count
    row.fail_count = stats.fail_count
    row.sum_us = stats.sum_us
    row.min_us = stats.min
    row.max_us = stats.max_us
    items = sorted(stats.histogram.counts.items())
    row.bucket_index.extend(index for index, _ in items)
    row.bucket_count.extend(count for _, count in items)
    for code, count in stats.status_codes.items():
        row.status_codes[code] = count


def _stats(row: wire.RowStats) -> Stats:
    stats = Stats()
    stats.success_count = row.success_count
    stats.fail_count = row.fail_count
    stats.sum_us = row.sum_us
    stats.histogram = Histogram.from_items(zip(row.bucket_index, row.bucket_count, strict=True))
    if stats.histogram.total:
        stats.min_us = row.min_us
    stats.max_us = row.max_us
    stats.status_codes = dict(row.status_codes)
    return stats


def to_delta(metrics: Metrics, sequence: int, users_running: int, final: bool) -> wire.Delta:
    delta = wire.Delta(sequence=sequence, users_running=users_running, final=final)
    for (method, name), stats in metrics.requests.items():
        _row(stats, delta.requests.add(method=method, name=name))
    for (taskset, task), stats in metrics.tasks.items():
        _row(stats, delta.tasks.add(taskset=taskset, task=task))
    for error, count in metrics.errors.items():
        delta.errors[error] = count
    return delta


def from_delta(delta: wire.Delta) -> Metrics:
    metrics = Metrics()
    for row in delta.requests:
        metrics.requests[(row.method, row.name)] = _stats(row)
    for row in delta.tasks:
        metrics.tasks[(row.taskset, row.task)] = _stats(row)
    metrics.errors = dict(delta.errors)
    return metrics
