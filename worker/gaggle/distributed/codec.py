"""``Metrics`` to and from the wire's ``Delta``: exact, and columnar so the manager folds it fast.

A delta's request and task rows travel as a ``Table`` of little-endian fixed-width columns
(gaggle.proto says which). Workers encode with the ``array`` module; ``merge_delta`` here is the
plain-Python reference decoder, and the manager's vectorised fold (``fold.Totals``) must give the
same numbers, which the tests check.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterator
from typing import Any

from gaggle.metrics.aggregate import Metrics, add_error
from gaggle.metrics.stats import Stats
from gaggle.wire import gaggle_pb2 as wire

_SWAP = sys.byteorder != "little"
_ENTRY_MAX = (1 << 32) - 1  # an entry's count is a uint32; larger counts take several entries
ROW_COLUMNS = {  # field → array typecode, one value per row
    "success_count": "q",
    "fail_count": "q",
    "sum_us": "Q",
    "min_us": "Q",
    "max_us": "Q",
    "bucket_rows": "I",
    "status_rows": "I",
}
ENTRY_COLUMNS = {  # field → array typecode, one value per entry
    "bucket_indexes": "H",
    "bucket_counts": "I",
    "status_codes": "H",
    "status_counts": "I",
}


def _to_bytes(values: array[Any]) -> bytes:
    if _SWAP:
        values.byteswap()
    return values.tobytes()


def _from_bytes(typecode: str, data: bytes) -> array[Any]:
    values: array[Any] = array(typecode)
    if len(data) % values.itemsize:
        raise ValueError(f"a column of {len(data)} bytes is not whole {values.itemsize}-byte items")
    values.frombytes(data)
    if _SWAP:
        values.byteswap()
    return values


def _entries(counts: dict[int, int], keys: array[int], values: array[int]) -> int:
    added = 0
    for key, count in sorted(counts.items()):
        while count > _ENTRY_MAX:
            keys.append(key)
            values.append(_ENTRY_MAX)
            count -= _ENTRY_MAX
            added += 1
        keys.append(key)
        values.append(count)
        added += 1
    return added


def _encode(rows: dict[Any, Stats], table: wire.Table, is_task: bool) -> None:
    columns: dict[str, array[Any]] = {
        name: array(code) for name, code in (ROW_COLUMNS | ENTRY_COLUMNS).items()
    }
    for key, stats in rows.items():
        if is_task:
            table.taskset.append(key[0])
            table.task.append(key[1])
        else:
            table.method.append(key[0])
            table.name.append(key[1])
        columns["success_count"].append(stats.success_count)
        columns["fail_count"].append(stats.fail_count)
        columns["sum_us"].append(stats.sum_us)
        columns["min_us"].append(stats.min_us)
        columns["max_us"].append(stats.max_us)
        counts = stats.histogram.counts
        buckets = _entries(counts, columns["bucket_indexes"], columns["bucket_counts"])
        columns["bucket_rows"].append(buckets)
        codes = _entries(stats.status_codes, columns["status_codes"], columns["status_counts"])
        columns["status_rows"].append(codes)
    for name, values in columns.items():
        setattr(table, name, _to_bytes(values))


def table_keys(table: wire.Table, is_task: bool) -> list[Any]:
    """(taskset, task) or (method, name) per row; ValueError when the key columns differ."""
    if is_task:
        return list(zip(table.taskset, table.task, strict=True))
    return list(zip(table.method, table.name, strict=True))


def decode_table(table: wire.Table, is_task: bool) -> Iterator[tuple[Any, Stats]]:
    """The rows of a table as (key, Stats); ValueError when its columns do not add up."""
    keys = table_keys(table, is_task)
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


def check_shape(
    keys: int, rows: dict[str, int], entries: dict[str, int], buckets: int, codes: int
) -> None:
    """Every row column has one value per key, and the entry columns as many as rows say."""
    wrong = {name: n for name, n in rows.items() if n != keys}
    expected = {"bucket_indexes": buckets, "bucket_counts": buckets}
    expected |= {"status_codes": codes, "status_counts": codes}
    wrong |= {name: n for name, n in entries.items() if n != expected[name]}
    if wrong:
        raise ValueError(f"a delta table with {keys} rows has columns of other lengths: {wrong}")


def merge_delta(totals: Metrics, delta: wire.Delta) -> None:
    """Fold a delta into ``totals`` in plain Python (the manager's ``fold.Totals`` is faster)."""
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
    merge_schedule(totals, delta)


LAG_KEY = ("", "lag")  # the one row of a delta's schedule_lag table


def merge_schedule(totals: Metrics, delta: wire.Delta) -> None:
    """A delta's dropped arrivals and schedule lag, into ``totals`` (one row: no fold needed)."""
    rows = list(decode_table(delta.schedule_lag, is_task=False))  # raises before any change
    totals.dropped += delta.arrivals_dropped
    for _, stats in rows:
        totals.lag.merge(stats)


def to_delta(metrics: Metrics, sequence: int, users_running: int, final: bool) -> wire.Delta:
    delta = wire.Delta(sequence=sequence, users_running=users_running, final=final)
    _encode(metrics.requests, delta.requests, is_task=False)
    _encode(metrics.tasks, delta.tasks, is_task=True)
    for error, count in metrics.errors.items():
        delta.errors[error] = count
    delta.arrivals_dropped = metrics.dropped
    if metrics.lag.timed_count:
        _encode({LAG_KEY: metrics.lag}, delta.schedule_lag, is_task=False)
    return delta


def from_delta(delta: wire.Delta) -> Metrics:
    metrics = Metrics()
    merge_delta(metrics, delta)
    return metrics
