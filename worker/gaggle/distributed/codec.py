"""Gaggle mode's wire format beyond gaggle.proto's messages: how ``Metrics`` become a ``Delta``,
how a timetable ``Segment`` travels, and the checks a received delta must pass.

One module owns the format so that its writer and its readers cannot drift apart. A delta's
request and task rows travel as a ``Table`` of little-endian integer columns: workers encode
them here with the ``array`` module (cheap, no numpy in a worker), and the manager folds them a
whole column at a time (``merged_tally``), which is only fast because they are columnar.

Why compact: 1,000 workers × 200 names sent a manager 28 MB/s in fixed-width columns with both
key strings in every row; gzip cut that to 7 MB/s but took the manager to a whole core. So each
column travels at the narrowest of 1, 2, 4 or 8 bytes that holds its values (``pack``: a width
byte, then the values; a count of 5 takes a byte, not 8), and a key travels once a stream: the
first delta with a row of it names it with an id (``KeyIds``), later rows carry the id alone.
Neither costs the manager more than the wide columns did: a column is still one ``frombuffer``,
widened once, and an id is a dict lookup where two strings were decoded. (Bucket indexes as the
gaps between them were measured too: a row's first index and the step back down at each row's
start need two bytes, so the column stayed as wide.)

The column tables (``KEY_COLUMNS``, ``NAMED_COLUMNS``, ``ROW_COLUMNS``, ``ENTRY_COLUMNS``: names
and the widest each column may be, as ``array`` typecodes) and ``check_shape`` are what every
reader decodes by; the decoding itself is each reader's own — the manager's numpy fold
(``delta_tables``), and a plain-Python reference decoder that the tests hold
(tests/support/reference_codec.py) to check the fold's numbers against.

Segments go to the workers when an open model's schedule changes mid-run, and to a late worker
as the timetable in force. Why a segment ends the run stays with the manager: a worker only
stops following it.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable, Sequence
from typing import Any

from gaggle.load import ArrivalSchedule, Ramp, Segment
from gaggle.metrics import Metrics, Stats
from gaggle.wire import gaggle_pb2 as wire

_SWAP = sys.byteorder != "little"
_ENTRY_MAX = (1 << 32) - 1  # an entry's count is a uint32; larger counts take several entries
KEY_COLUMNS = {  # is_task → the repeated fields that hold the keys a table names
    False: ("method", "name"),
    True: ("taskset", "task"),
}
# Columns, each an array typecode: its values' sign and the widest they travel (little-endian).
NAMED_COLUMNS = {"key_ids": "I"}  # one value per key the table names
ROW_COLUMNS = {  # one value per row
    "row_keys": "I",
    "success_count": "q",
    "fail_count": "q",
    "sum_us": "Q",
    "min_us": "Q",
    "max_us": "Q",
    "bucket_rows": "I",
    "status_rows": "I",
}
ENTRY_COLUMNS = {  # one value per entry
    "bucket_indexes": "H",
    "bucket_counts": "I",
    "status_codes": "H",
    "status_counts": "I",
}
WIDTHS = (1, 2, 4, 8)  # bytes a column's values may take, narrowest first
NARROW = {  # (signed, width) → the array typecode of that width
    (signed, array(code).itemsize): code
    for signed, codes in ((True, "bhiq"), (False, "BHIQ"))
    for code in codes
}
assert sorted({width for _, width in NARROW}) == list(WIDTHS), "array's item sizes differ here"
LAG_KEY = ("", "lag")  # the one row of a delta's schedule_lag table


def widths(typecode: str) -> tuple[int, ...]:
    """The widths a column of ``typecode`` may travel at."""
    return tuple(width for width in WIDTHS if width <= array(typecode).itemsize)


def pack(typecode: str, values: Sequence[int]) -> bytes:
    """A column of ``values``: a byte saying the narrowest width that holds them all, then each
    value at that width; no values, no bytes. OverflowError when ``typecode`` cannot hold one."""
    if not values:
        return b""
    signed, low, high = typecode.islower(), min(values), max(values)
    for width in widths(typecode):
        limit = 1 << (8 * width - 1 if signed else 8 * width)
        if high < limit and low >= (-limit if signed else 0):
            break
    column = array(NARROW[signed, width], values)  # a value it cannot hold: OverflowError
    if _SWAP:
        column.byteswap()
    return bytes((width,)) + column.tobytes()


def check_shape(
    named: dict[str, int], rows: dict[str, int], entries: dict[str, int], buckets: int, codes: int
) -> None:
    """The named keys' fields pair up, every row column has one value per row (``row_keys``
    says how many), and the entry columns as many as rows say; ValueError otherwise (a reader
    checks before it folds anything)."""
    if len(set(named.values())) > 1:
        raise ValueError(f"the keys named do not pair up: {named}")
    count = rows["row_keys"]
    wrong = {name: n for name, n in rows.items() if n != count}
    expected = {"bucket_indexes": buckets, "bucket_counts": buckets}
    expected |= {"status_codes": codes, "status_counts": codes}
    wrong |= {name: n for name, n in entries.items() if n != expected[name]}
    if wrong:
        raise ValueError(f"a delta table with {count} rows has columns of other lengths: {wrong}")


# --- deltas -----------------------------------------------------------------------------------
class KeyIds:
    """The keys one stream's deltas have named, by table, each with its id: a key travels once,
    in the first delta with a row of it. A worker keeps one for its stream; a new stream starts
    afresh (the manager's table of a stream goes with the stream)."""

    def __init__(self) -> None:
        self.requests: dict[Any, int] = {}
        self.tasks: dict[Any, int] = {}
        self.schedule_lag: dict[Any, int] = {}


def to_delta(
    metrics: Metrics,
    sequence: int,
    users_running: int,
    final: bool,
    keys: KeyIds | None = None,
) -> wire.Delta:
    """``metrics`` as a delta of the stream whose keys ``keys`` holds (None: a delta read
    alone, naming every key it has)."""
    keys = KeyIds() if keys is None else keys
    delta = wire.Delta(sequence=sequence, users_running=users_running, final=final)
    _encode(metrics.requests, delta.requests, False, keys.requests)
    _encode(metrics.tasks, delta.tasks, True, keys.tasks)
    for error, count in metrics.errors.items():
        delta.errors[error] = count
    delta.arrivals_dropped = metrics.dropped
    delta.requests_abandoned = metrics.abandoned_requests
    delta.tasks_abandoned = metrics.abandoned_tasks
    if metrics.lag.timed_count:
        _encode({LAG_KEY: metrics.lag}, delta.schedule_lag, False, keys.schedule_lag)
    return delta


def _encode(rows: dict[Any, Stats], table: wire.Table, is_task: bool, ids: dict[Any, int]) -> None:
    columns: dict[str, list[int]] = {name: [] for name in ROW_COLUMNS | ENTRY_COLUMNS}
    named: list[int] = []
    first, second = (getattr(table, name) for name in KEY_COLUMNS[is_task])
    for key, stats in rows.items():
        key_id = ids.get(key)
        if key_id is None:  # its first row on this stream: named, with the next id
            key_id = ids[key] = len(ids)
            first.append(key[0])
            second.append(key[1])
            named.append(key_id)
        columns["row_keys"].append(key_id)
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
    table.key_ids = pack(NAMED_COLUMNS["key_ids"], named)
    for name, typecode in (ROW_COLUMNS | ENTRY_COLUMNS).items():
        setattr(table, name, pack(typecode, columns[name]))


def _entries(counts: dict[int, int], keys: list[int], values: list[int]) -> int:
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


# --- an open model's timetable ----------------------------------------------------------------
def segment_to_wire(segment: Segment) -> wire.Segment:
    ramps = [wire.Ramp(begin=r.begin, end=r.end, seconds=r.seconds) for r in segment.schedule.ramps]
    return wire.Segment(offset=segment.offset, first=segment.first, ramps=ramps)


def segment_from_wire(message: wire.Segment) -> Segment:
    ramps = tuple(Ramp(r.begin, r.end, r.seconds) for r in message.ramps)
    return Segment(message.offset, message.first, ArrivalSchedule(ramps))


def timetable_from_wire(messages: Iterable[wire.Segment]) -> tuple[Segment, ...]:
    return tuple(segment_from_wire(message) for message in messages)
