"""The plain-Python reference decoder of Gaggle mode's deltas, for tests and benchmarks only.

The manager folds deltas with numpy (``gaggle.distributed.merged_tally``); this decodes them the
slow, obvious way, row by row into ``Stats``, so that the tests can check the fold's numbers
against it. Both read the format ``gaggle.distributed.codec`` owns: its column tables and its
``check_shape``. A column is a width byte and the values at that width; a row's key is an id
its stream named (``Names``: pass one per stream to ``merge_delta``, or none for a delta alone).
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterator
from typing import Any

from gaggle.distributed.codec import (
    ENTRY_COLUMNS,
    KEY_COLUMNS,
    NAMED_COLUMNS,
    ROW_COLUMNS,
    check_shape,
)
from gaggle.metrics.aggregate import Metrics, add_error
from gaggle.metrics.stats import Stats
from gaggle.wire import gaggle_pb2 as wire

_SWAP = sys.byteorder != "little"
_TYPECODES = {  # (signed, width in bytes) → array typecode
    (signed, array(code).itemsize): code
    for signed, codes in ((True, "bhiq"), (False, "BHIQ"))
    for code in codes
}
Names = dict[str, dict[int, Any]]  # a stream's keys: by table field, by id


def from_delta(delta: wire.Delta) -> Metrics:
    metrics = Metrics()
    merge_delta(metrics, delta)
    return metrics


def merge_delta(totals: Metrics, delta: wire.Delta, names: Names | None = None) -> None:
    """Fold a delta into ``totals`` in plain Python (the manager's ``Totals`` is faster);
    ``names``: its stream's keys so far, updated with those the delta names."""
    names = {} if names is None else names
    for field, is_task, target in (
        ("requests", False, totals.requests),
        ("tasks", True, totals.tasks),
    ):
        for key, stats in decode_table(getattr(delta, field), is_task, names.setdefault(field, {})):
            total = target.get(key)
            if total is None:
                target[key] = stats
            else:
                total.merge(stats)
    for error, count in delta.errors.items():
        add_error(totals.errors, error, count)
    rows = list(decode_table(delta.schedule_lag, False, names.setdefault("schedule_lag", {})))
    totals.dropped += delta.arrivals_dropped
    totals.abandoned_requests += delta.requests_abandoned
    totals.abandoned_tasks += delta.tasks_abandoned
    for _, stats in rows:
        totals.lag.merge(stats)


def decode_table(
    table: wire.Table, is_task: bool, known: dict[int, Any] | None = None
) -> Iterator[tuple[Any, Stats]]:
    """The rows of a table as (key, Stats), ``known`` (the keys its stream named before) taking
    the keys it names; ValueError when its columns do not add up or name an unknown key."""
    known = {} if known is None else known
    first, second = KEY_COLUMNS[is_task]
    named = list(zip(getattr(table, first), getattr(table, second), strict=False))
    key_ids = values(NAMED_COLUMNS["key_ids"], table.key_ids)
    rows = {name: values(code, getattr(table, name)) for name, code in ROW_COLUMNS.items()}
    entries = {name: values(code, getattr(table, name)) for name, code in ENTRY_COLUMNS.items()}
    check_shape(
        {first: len(getattr(table, first)), second: len(getattr(table, second)),
         "key_ids": len(key_ids)},
        {name: len(column) for name, column in rows.items()},
        {name: len(column) for name, column in entries.items()},
        sum(rows["bucket_rows"]),
        sum(rows["status_rows"]),
    )  # fmt: skip
    for key_id, key in zip(key_ids, named, strict=True):
        if key_id in known:
            raise ValueError(f"key id {key_id} named again")
        known[key_id] = key
    bucket = code = 0
    for i, key_id in enumerate(rows["row_keys"]):
        if key_id not in known:
            raise ValueError(f"key id {key_id} was never named")
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
        yield known[key_id], stats


def values(typecode: str, data: bytes) -> list[int]:
    """A column's values: its first byte their width (no wider than ``typecode``), then them."""
    if not data:
        return []
    signed, width, widest = typecode.islower(), data[0], array(typecode).itemsize
    if width not in (1, 2, 4, 8) or width > widest:
        raise ValueError(f"a column {width} bytes wide (want 1, 2, 4 or 8, at most {widest})")
    column: array[Any] = array(_TYPECODES[signed, width])
    if (len(data) - 1) % width:
        raise ValueError(f"a column of {len(data) - 1} bytes is not whole {width}-byte items")
    column.frombytes(data[1:])
    if _SWAP:
        column.byteswap()
    return column.tolist()


def column(typecode: str, *numbers: int, width: int | None = None) -> bytes:
    """A column of ``numbers`` as a worker writes it (``width``: as wide as that instead of the
    narrowest), built here byte by byte: a check on the encoder, not a copy of it."""
    if not numbers:
        return b""
    signed = typecode.islower()
    if width is None:
        width = next(
            size for size in (1, 2, 4, 8) if all(_fits(number, size, signed) for number in numbers)
        )
    return bytes((width,)) + b"".join(n.to_bytes(width, "little", signed=signed) for n in numbers)


def _fits(number: int, width: int, signed: bool) -> bool:
    try:
        number.to_bytes(width, "little", signed=signed)
    except OverflowError:
        return False
    return True
