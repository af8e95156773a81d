"""The plain-Python reference decoder of Gaggle mode's deltas, for tests and benchmarks only.

The manager folds deltas with numpy (``gaggle.distributed.merged_tally``); this decodes them the
slow, obvious way, row by row into ``Stats``, so that the tests can check the fold's numbers
against it. Both read the format ``gaggle.distributed.codec`` owns: its column tables and its
``check_shape``.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterator
from typing import Any

from gaggle.distributed.codec import ENTRY_COLUMNS, KEY_COLUMNS, ROW_COLUMNS, check_shape
from gaggle.metrics.aggregate import Metrics, add_error
from gaggle.metrics.stats import Stats
from gaggle.wire import gaggle_pb2 as wire

_SWAP = sys.byteorder != "little"


def from_delta(delta: wire.Delta) -> Metrics:
    metrics = Metrics()
    merge_delta(metrics, delta)
    return metrics


def merge_delta(totals: Metrics, delta: wire.Delta) -> None:
    """Fold a delta into ``totals`` in plain Python (the manager's ``Totals`` is faster)."""
    for table, is_task, target in (
        (delta.requests, False, totals.requests),
        (delta.tasks, True, totals.tasks),
    ):
        for key, stats in decode_table(table, is_task):
            total = target.get(key)
            if total is None:
                target[key] = stats
            else:
                total.merge(stats)
    for error, count in delta.errors.items():
        add_error(totals.errors, error, count)
    rows = list(decode_table(delta.schedule_lag, is_task=False))
    totals.dropped += delta.arrivals_dropped
    totals.abandoned_requests += delta.requests_abandoned
    totals.abandoned_tasks += delta.tasks_abandoned
    for _, stats in rows:
        totals.lag.merge(stats)


def decode_table(table: wire.Table, is_task: bool) -> Iterator[tuple[Any, Stats]]:
    """The rows of a table as (key, Stats); ValueError when its columns do not add up."""
    first, second = KEY_COLUMNS[is_task]
    keys = list(zip(getattr(table, first), getattr(table, second), strict=True))
    rows = {name: _from_bytes(code, getattr(table, name)) for name, code in ROW_COLUMNS.items()}
    entries = {
        name: _from_bytes(code, getattr(table, name)) for name, code in ENTRY_COLUMNS.items()
    }
    check_shape(
        len(keys),
        {name: len(values) for name, values in rows.items()},
        {name: len(values) for name, values in entries.items()},
        sum(rows["bucket_rows"]),
        sum(rows["status_rows"]),
    )
    bucket = code = 0
    for i, key in enumerate(keys):
        stats = Stats()
        stats.success_count = rows["success_count"][i]
        stats.fail_count = rows["fail_count"][i]
        stats.sum_us = rows["sum_us"][i]
        stats.min_us = rows["min_us"][i]
        stats.max_us = rows["max_us"][i]
        histogram = stats.histogram
        for j in range(bucket, bucket + rows["bucket_rows"][i]):
            index, count = entries["bucket_indexes"][j], entries["bucket_counts"][j]
            histogram.counts[index] = histogram.counts.get(index, 0) + count
            histogram.total += count
        bucket += rows["bucket_rows"][i]
        for j in range(code, code + rows["status_rows"][i]):
            status, count = entries["status_codes"][j], entries["status_counts"][j]
            stats.status_codes[status] = stats.status_codes.get(status, 0) + count
        code += rows["status_rows"][i]
        yield key, stats


def _from_bytes(typecode: str, data: bytes) -> array[Any]:
    values: array[Any] = array(typecode)
    if len(data) % values.itemsize:
        raise ValueError(f"a column of {len(data)} bytes is not whole {values.itemsize}-byte items")
    values.frombytes(data)
    if _SWAP:
        values.byteswap()
    return values
