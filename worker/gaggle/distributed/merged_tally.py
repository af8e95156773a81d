"""The manager's running totals, folded a whole delta at a time.

Why numpy: a gaggle of 100 workers × 200 request names sends about 22,000 rows and 1.6 million
histogram buckets a second; folding them one by one in Python cost three quarters of a core
(benchmarks/gaggle.py). Deltas are columnar (gaggle.proto's ``Table``), so here each column is one
array and a delta folds in a few ``np.add.at`` / ``np.minimum.at`` steps into dense arrays with a
row (slot) per request (method, name) or task. ``metrics()`` writes the slots that changed back
into the engine's ``Stats`` when someone reads them (tables, a scrape, /summary). numpy is
imported by the manager only.

The format is ``codec``'s: its column tables say which fields a table has and how wide each is,
and its ``check_shape`` is the check every reader makes before folding anything. The decoding is
this module's own. A plain-Python reference decoder, tests/support/reference_codec.py, must give
the same numbers exactly, which the tests check.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from gaggle.distributed.codec import ENTRY_COLUMNS, KEY_COLUMNS, ROW_COLUMNS, check_shape
from gaggle.metrics import MAX_DISTINCT_ERRORS, NO_MIN, Metrics, Stats, add_error
from gaggle.wire import gaggle_pb2 as wire

# Bucket indexes 0..4095 cover response times up to about 76 hours; a longer one is counted in
# the last bucket (its min and max stay exact). 32 KiB per request name or task.
WIDTH = 4096
CODES = 1000  # HTTP status codes 0..999
# codec's typecodes are C types, as the array module writes them; the wire's are little-endian
_DTYPES = {
    code: np.dtype(code).newbyteorder("<") for code in (ROW_COLUMNS | ENTRY_COLUMNS).values()
}

Columns = dict[str, npt.NDArray[Any]]


class MergedTally:
    """The manager's ``session.Tally``: its workers' deltas folded in, reset at the hatch."""

    def __init__(self) -> None:
        self._totals = Totals()

    def merge(self, delta: wire.Delta) -> None:
        self._totals.merge(delta)

    def metrics(self) -> Metrics:
        return self._totals.metrics()

    def reset(self) -> Metrics:
        counted, self._totals = self._totals.metrics(), Totals()
        return counted


class Totals:
    def __init__(self, capacity: int = 16) -> None:
        self._metrics = Metrics()
        self._slots: dict[tuple[bool, Any], int] = {}  # (is_task, key) -> slot
        self._stats: list[Stats] = []
        self._counts = np.zeros((capacity, 2), dtype=np.int64)  # success, fail
        self._sums = np.zeros(capacity, dtype=np.uint64)
        self._mins = np.full(capacity, NO_MIN, dtype=np.uint64)
        self._maxs = np.zeros(capacity, dtype=np.uint64)
        self._buckets = np.zeros((capacity, WIDTH), dtype=np.uint64)
        self._codes = np.zeros((capacity, CODES), dtype=np.uint64)
        self._dirty: set[int] = set()

    def merge(self, delta: wire.Delta) -> None:
        """Fold one delta in; a malformed one raises ValueError before anything is folded."""
        tables = [_columns(delta.requests, False), _columns(delta.tasks, True)]
        # an open model's lag, checked before folding too; a closed model's deltas have none
        lag = _columns(delta.schedule_lag, False)[1] if delta.HasField("schedule_lag") else None
        for is_task, (keys, columns) in zip((False, True), tables, strict=True):
            if keys:
                self._fold(self._slots_of(is_task, keys), columns)
        self._metrics.dropped += delta.arrivals_dropped
        self._metrics.abandoned_requests += delta.requests_abandoned
        self._metrics.abandoned_tasks += delta.tasks_abandoned
        if lag is not None:
            _add_rows(self._metrics.lag, lag)
        errors, incoming = self._metrics.errors, delta.errors
        if len(errors) + len(incoming) <= MAX_DISTINCT_ERRORS:  # no cap to apply: plain sums
            get = errors.get
            for error in incoming:  # by key: protobuf maps' items() is twice as slow
                errors[error] = get(error, 0) + incoming[error]
        else:
            for error, count in incoming.items():
                add_error(errors, error, count)

    def metrics(self) -> Metrics:
        """The totals as the engine's ``Metrics`` (live: later merges update it again)."""
        for slot in self._dirty:
            stats = self._stats[slot]
            stats.success_count, stats.fail_count = self._counts[slot].tolist()
            stats.sum_us = int(self._sums[slot])
            stats.min_us = int(self._mins[slot])
            stats.max_us = int(self._maxs[slot])
            stats.histogram.counts = _sparse(self._buckets[slot])
            stats.histogram.total = int(self._buckets[slot].sum())
            stats.status_codes = _sparse(self._codes[slot])
        self._dirty.clear()
        return self._metrics

    def _slots_of(self, is_task: bool, keys: list[Any]) -> npt.NDArray[np.intp]:
        slots = self._slots
        found = [slots.get((is_task, key)) for key in keys]
        for i, slot in enumerate(found):
            if slot is None:
                found[i] = self._add_slot(is_task, keys[i])
        return np.array(found, dtype=np.intp)

    def _add_slot(self, is_task: bool, key: Any) -> int:
        slot = len(self._stats)
        if slot == len(self._sums):
            self._grow()
        stats = Stats()
        self._stats.append(stats)
        self._slots[(is_task, key)] = slot
        (self._metrics.tasks if is_task else self._metrics.requests)[key] = stats
        return slot

    def _grow(self) -> None:
        def double(array: npt.NDArray[Any], fill: int = 0) -> npt.NDArray[Any]:
            more = np.full_like(array, fill)
            return np.concatenate([array, more])

        self._counts, self._sums = double(self._counts), double(self._sums)
        self._mins, self._maxs = double(self._mins, NO_MIN), double(self._maxs)
        self._buckets, self._codes = double(self._buckets), double(self._codes)

    def _fold(self, slots: npt.NDArray[np.intp], columns: Columns) -> None:
        np.add.at(self._counts[:, 0], slots, columns["success_count"])
        np.add.at(self._counts[:, 1], slots, columns["fail_count"])
        np.add.at(self._sums, slots, columns["sum_us"])
        np.minimum.at(self._mins, slots, columns["min_us"])
        np.maximum.at(self._maxs, slots, columns["max_us"])
        where = np.repeat(slots * WIDTH, columns["bucket_rows"])
        where += np.minimum(columns["bucket_indexes"], WIDTH - 1)
        # Same dtypes on both sides: ufunc.at's casting path is ~25x slower than its fast path.
        counts = columns["bucket_counts"].astype(np.uint64)
        np.add.at(self._buckets.reshape(-1), where, counts)
        where = np.repeat(slots * CODES, columns["status_rows"]) + columns["status_codes"]
        np.add.at(self._codes.reshape(-1), where, columns["status_counts"].astype(np.uint64))
        self._dirty.update(slots.tolist())


def _sparse(dense: npt.NDArray[np.uint64]) -> dict[int, int]:
    filled = np.flatnonzero(dense)
    return dict(zip(filled.tolist(), dense[filled].tolist(), strict=True))


def _add_rows(stats: Stats, columns: Columns) -> None:
    """A table's rows added to one ``Stats`` as Python ints: the schedule lag's (one row at
    most), too few for the dense fold, and its buckets past ``WIDTH`` stay exact."""
    rows = {name: columns[name].tolist() for name in ROW_COLUMNS}
    if not rows["success_count"]:
        return
    stats.success_count += sum(rows["success_count"])
    stats.fail_count += sum(rows["fail_count"])
    stats.sum_us += sum(rows["sum_us"])
    stats.min_us = min(stats.min_us, *rows["min_us"])
    stats.max_us = max(stats.max_us, *rows["max_us"])
    buckets, counts = stats.histogram.counts, columns["bucket_counts"].tolist()
    for index, count in zip(columns["bucket_indexes"].tolist(), counts, strict=True):
        buckets[index] = buckets.get(index, 0) + count
    stats.histogram.total += sum(counts)
    codes = stats.status_codes
    for code, count in zip(
        columns["status_codes"].tolist(), columns["status_counts"].tolist(), strict=True
    ):
        codes[code] = codes.get(code, 0) + count


def _columns(table: wire.Table, is_task: bool) -> tuple[list[Any], Columns]:
    """A table's keys and its columns as arrays, checked to fit together."""
    first, second = KEY_COLUMNS[is_task]
    keys = list(zip(getattr(table, first), getattr(table, second), strict=True))
    columns: Columns = {}
    for name, code in (ROW_COLUMNS | ENTRY_COLUMNS).items():
        data = getattr(table, name)
        size = _DTYPES[code].itemsize
        if len(data) % size:
            raise ValueError(f"a column of {len(data)} bytes is not whole {size}-byte items")
        columns[name] = np.frombuffer(data, dtype=_DTYPES[code])
    check_shape(
        len(keys),
        {name: len(columns[name]) for name in ROW_COLUMNS},
        {name: len(columns[name]) for name in ENTRY_COLUMNS},
        int(columns["bucket_rows"].sum()),
        int(columns["status_rows"].sum()),
    )
    if len(columns["status_codes"]) and int(columns["status_codes"].max()) >= CODES:
        raise ValueError(f"a status code of {int(columns['status_codes'].max())} (want < 1000)")
    return keys, columns
