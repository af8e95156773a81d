"""``Metrics`` to and from the wire's ``Delta``: structured, exact, and cheap per row."""

from __future__ import annotations

from gaggle.metrics.aggregate import Metrics, add_error
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


def _merge_row(stats: Stats, row: wire.RowStats) -> None:
    """Fold a wire row straight into a total: no throwaway Stats or Histogram per delta (the
    manager's cost is per bucket of every row of every delta; building and then merging doubled
    it — benchmarks/gaggle.py)."""
    stats.success_count += row.success_count
    stats.fail_count += row.fail_count
    stats.sum_us += row.sum_us
    bucket_counts = row.bucket_count
    if bucket_counts:  # a row of flips only carries no timings, so no min or max either
        stats.min_us = min(stats.min_us, row.min_us)
        stats.max_us = max(stats.max_us, row.max_us)
        histogram = stats.histogram
        counts = histogram.counts
        get = counts.get
        for index, count in zip(row.bucket_index, bucket_counts, strict=True):
            counts[index] = get(index, 0) + count
        histogram.total += sum(bucket_counts)
    codes = stats.status_codes
    for code, count in row.status_codes.items():
        codes[code] = codes.get(code, 0) + count


def merge_delta(totals: Metrics, delta: wire.Delta) -> None:
    """``totals.merge(from_delta(delta))``, without building the intermediate Metrics."""
    for row in delta.requests:
        key = (row.method, row.name)
        stats = totals.requests.get(key)
        if stats is None:
            stats = totals.requests[key] = Stats()
        _merge_row(stats, row)
    for row in delta.tasks:
        task_key = (row.taskset, row.task)
        task_stats = totals.tasks.get(task_key)
        if task_stats is None:
            task_stats = totals.tasks[task_key] = Stats()
        _merge_row(task_stats, row)
    for error, count in delta.errors.items():
        add_error(totals.errors, error, count)


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
    merge_delta(metrics, delta)
    return metrics
