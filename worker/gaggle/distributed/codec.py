"""Gaggle mode's wire format beyond gaggle.proto's messages: how ``Metrics`` become a ``Delta``,
how a timetable ``Segment`` travels, and the checks a received delta must pass.

One module owns the format so that its writer and its readers cannot drift apart. A delta's
request and task rows travel as a ``Table`` of little-endian fixed-width columns: workers encode
them here with the ``array`` module (cheap, no numpy in a worker), and the manager folds them a
whole column at a time (``merged_tally``), which is only fast because they are columnar. The
column tables (``KEY_COLUMNS``, ``ROW_COLUMNS``, ``ENTRY_COLUMNS``: names and widths) and
``check_shape`` are what every reader decodes by; the decoding itself is each reader's own —
the manager's numpy fold, and a plain-Python reference decoder that the tests hold
(tests/support/reference_codec.py) to check the fold's numbers against.

Segments go to the workers when an open model's schedule changes mid-run, and to a late worker
as the timetable in force. Why a segment ends the run stays with the manager: a worker only
stops following it.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable
from typing import Any

from gaggle.load import ArrivalSchedule, Ramp, Segment
from gaggle.metrics import Metrics, Stats
from gaggle.wire import gaggle_pb2 as wire

_SWAP = sys.byteorder != "little"
_ENTRY_MAX = (1 << 32) - 1  # an entry's count is a uint32; larger counts take several entries
KEY_COLUMNS = {  # is_task → the repeated string fields that key a row
    False: ("method", "name"),
    True: ("taskset", "task"),
}
ROW_COLUMNS = {  # field → array typecode (little-endian on the wire), one value per row
    "success_count": "q",
    "fail_count": "q",
    "sum_us": "Q",
    "min_us": "Q",
    "max_us": "Q",
    "bucket_rows": "I",
    "status_rows": "I",
}
ENTRY_COLUMNS = {  # field → array typecode (little-endian on the wire), one value per entry
    "bucket_indexes": "H",
    "bucket_counts": "I",
    "status_codes": "H",
    "status_counts": "I",
}
LAG_KEY = ("", "lag")  # the one row of a delta's schedule_lag table


def check_shape(
    keys: int, rows: dict[str, int], entries: dict[str, int], buckets: int, codes: int
) -> None:
    """Every row column has one value per key, and the entry columns as many as rows say;
    ValueError otherwise (a reader checks before it folds anything)."""
    wrong = {name: n for name, n in rows.items() if n != keys}
    expected = {"bucket_indexes": buckets, "bucket_counts": buckets}
    expected |= {"status_codes": codes, "status_counts": codes}
    wrong |= {name: n for name, n in entries.items() if n != expected[name]}
    if wrong:
        raise ValueError(f"a delta table with {keys} rows has columns of other lengths: {wrong}")


# --- deltas -----------------------------------------------------------------------------------
def to_delta(metrics: Metrics, sequence: int, users_running: int, final: bool) -> wire.Delta:
    delta = wire.Delta(sequence=sequence, users_running=users_running, final=final)
    _encode(metrics.requests, delta.requests, is_task=False)
    _encode(metrics.tasks, delta.tasks, is_task=True)
    for error, count in metrics.errors.items():
        delta.errors[error] = count
    delta.arrivals_dropped = metrics.dropped
    delta.requests_abandoned = metrics.abandoned_requests
    delta.tasks_abandoned = metrics.abandoned_tasks
    if metrics.lag.timed_count:
        _encode({LAG_KEY: metrics.lag}, delta.schedule_lag, is_task=False)
    return delta


def _encode(rows: dict[Any, Stats], table: wire.Table, is_task: bool) -> None:
    columns: dict[str, array[Any]] = {
        name: array(code) for name, code in (ROW_COLUMNS | ENTRY_COLUMNS).items()
    }
    first, second = (getattr(table, name) for name in KEY_COLUMNS[is_task])
    for key, stats in rows.items():
        first.append(key[0])
        second.append(key[1])
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


def _to_bytes(values: array[Any]) -> bytes:
    if _SWAP:
        values.byteswap()
    return values.tobytes()


# --- an open model's timetable ----------------------------------------------------------------
def segment_to_wire(segment: Segment) -> wire.Segment:
    ramps = [wire.Ramp(begin=r.begin, end=r.end, seconds=r.seconds) for r in segment.schedule.ramps]
    return wire.Segment(offset=segment.offset, first=segment.first, ramps=ramps)


def segment_from_wire(message: wire.Segment) -> Segment:
    ramps = tuple(Ramp(r.begin, r.end, r.seconds) for r in message.ramps)
    return Segment(message.offset, message.first, ArrivalSchedule(ramps))


def timetable_from_wire(messages: Iterable[wire.Segment]) -> tuple[Segment, ...]:
    return tuple(segment_from_wire(message) for message in messages)
