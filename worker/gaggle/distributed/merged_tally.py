"""The manager's running totals, folded a whole delta at a time.

Why numpy: a gaggle of 100 workers × 200 request names sends about 22,000 rows and 1.6 million
histogram buckets a second; folding them one by one in Python cost three quarters of a core
(benchmarks/gaggle.py). Deltas are columnar (gaggle.proto's ``Table``), so here each column is one
array and a delta folds in a few numpy steps into arrays with a row (slot) per request (method,
name) or task. A slot holds what it has counted, not every bucket there is: its histogram is a
window of the buckets from its fastest to its slowest time (``WindowCounts``), its status codes
a column per code the run has seen (``CodeCounts``). Whole rows (40 KiB a name) took the manager
to 1.8 GB with 20,000 names, a request path each (review D3); a name seen once now costs a few
cells, and a bucket still folds at a fixed offset, as in a dense row.

The arrays hold what arrived since the last read; the engine's ``Stats`` hold the rest. A read
(tables, a scrape, /summary, the status lines) takes what the slots that changed hold, adds it
to their ``Stats`` in place and zeroes it, and hands the same change on to the whole run's
totals (``RunTotals``): its cost is the cells of the names that changed, whatever the run holds,
and nothing waits in a list between reads. Rewriting whole rows on each read, and sorting every
entry folded since the last, cost a manager of 1,000 workers a quarter of a core. numpy is
imported by the manager only; the deltas come decoded (``delta_tables``), once for the checks and
the fold.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import numpy.typing as npt

from gaggle.distributed.codec import ROW_COLUMNS
from gaggle.distributed.delta_tables import Columns, DeltaTables, decode
from gaggle.metrics import (
    BUCKET_KEYS,
    MAX_DISTINCT_ERRORS,
    NO_MIN,
    Metrics,
    RunTotals,
    Stats,
    add_error,
)
from gaggle.wire import gaggle_pb2 as wire

# Bucket indexes 0..4095 cover response times up to about 76 hours; a longer one is counted in
# the last bucket (its min and max stay exact).
WIDTH = 4096
CODES = 1000  # HTTP status codes 0..999
_KEY_OBJECTS = np.array(BUCKET_KEYS, dtype=object)
POOL_MIN = 1 << 12  # cells: a window pool's first size, and garbage it may hold uncompacted


class MergedTally:
    """The manager's ``session.Tally``: its workers' deltas folded in, reset at the hatch."""

    def __init__(self) -> None:
        self._totals = Totals()
        self._run = RunTotals(self._totals.metrics(), self._read)

    def merge(self, delta: wire.Delta, tables: DeltaTables | None = None) -> None:
        self._totals.merge(delta, tables)

    def metrics(self) -> Metrics:
        self._read()
        return self._totals.metrics()

    def run_totals(self) -> RunTotals:
        return self._run

    def reset(self) -> Metrics:
        self._read()
        counted, self._totals = self._totals.metrics(), Totals()
        self._run.set_aside(self._totals.metrics())
        return counted

    def _read(self) -> None:
        """The totals brought up to date; what they gained since the last read, told to the
        run's."""
        changes = self._totals.changes()
        if not changes.is_empty():
            self._run.add(changes)


class Totals:
    def __init__(self, capacity: int = 16) -> None:
        self._metrics = Metrics()  # by slot: what every read so far took
        self._slots: tuple[dict[Any, int], dict[Any, int]] = ({}, {})  # [is_task][key]
        self._stats: list[Stats] = []
        self._keys: list[tuple[bool, Any]] = []  # by slot: (is_task, key)
        # by slot: what arrived since the last read (min and max: the whole run's)
        self._counts = np.zeros((capacity, 2), dtype=np.int64)  # success, fail
        self._sums = np.zeros(capacity, dtype=np.uint64)
        self._mins = np.full(capacity, NO_MIN, dtype=np.uint64)
        self._maxs = np.zeros(capacity, dtype=np.uint64)
        self._buckets = WindowCounts(WIDTH, capacity)
        self._codes = CodeCounts(capacity)
        self._dirty: set[int] = set()
        self._unread = Metrics()  # what merges added beside the slots since ``changes()``

    def merge(self, delta: wire.Delta, tables: DeltaTables | None = None) -> None:
        """Fold one delta in (``tables``: it decoded already); a malformed one raises
        ValueError before anything is folded."""
        requests, tasks, lag = decode(delta) if tables is None else tables
        for codes in (requests.columns["status_codes"], tasks.columns["status_codes"]):
            if len(codes) and int(codes.max()) >= CODES:
                raise ValueError(f"a status code of {int(codes.max())} (want < {CODES})")
        folds = [
            (self._slots_of(is_task, table.keys), table.columns)
            for is_task, table in ((False, requests), (True, tasks))
            if table.keys
        ]
        for slots, columns in folds:
            self._fold(slots, columns)
        for metrics in (self._metrics, self._unread):
            metrics.dropped += delta.arrivals_dropped
            metrics.abandoned_requests += delta.requests_abandoned
            metrics.abandoned_tasks += delta.tasks_abandoned
            _add_rows(metrics.lag, lag.columns)
        for errors in (self._metrics.errors, self._unread.errors):
            _add_errors(errors, delta.errors)

    def metrics(self) -> Metrics:
        """The totals as the engine's ``Metrics`` (live: later reads update it in place)."""
        self.changes()
        return self._metrics

    def changes(self) -> Metrics:
        """What arrived since the previous call, as a delta, after adding it to the totals."""
        changes, self._unread = self._unread, Metrics()
        if not self._dirty:
            return changes
        slots = np.array(sorted(self._dirty), dtype=np.int64)
        self._dirty.clear()
        counts, sums = self._counts[slots].tolist(), self._sums[slots].tolist()
        self._counts[slots], self._sums[slots] = 0, 0
        mins, maxs = self._mins[slots].tolist(), self._maxs[slots].tolist()
        buckets, codes = self._buckets.take(slots), self._codes.take(slots)
        for i, slot in enumerate(slots.tolist()):
            change = Stats()
            change.success_count, change.fail_count = counts[i]
            change.sum_us, change.min_us, change.max_us = sums[i], mins[i], maxs[i]
            change.histogram.counts = buckets[i]
            change.histogram.total = sum(buckets[i].values())
            change.status_codes = codes[i]
            self._stats[slot].merge(change)
            is_task, key = self._keys[slot]
            (changes.tasks if is_task else changes.requests)[key] = change
        return changes

    def _slots_of(self, is_task: bool, keys: list[Any]) -> npt.NDArray[np.intp]:
        found = list(map(self._slots[is_task].get, keys))
        if None in found:  # names never seen before
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
        self._slots[is_task][key] = slot
        self._keys.append((is_task, key))
        (self._metrics.tasks if is_task else self._metrics.requests)[key] = stats
        return slot

    def _grow(self) -> None:
        def double(array: npt.NDArray[Any], fill: int = 0) -> npt.NDArray[Any]:
            more = np.full_like(array, fill)
            return np.concatenate([array, more])

        self._counts, self._sums = double(self._counts), double(self._sums)
        self._mins, self._maxs = double(self._mins, NO_MIN), double(self._maxs)
        self._buckets.grow(len(self._sums))
        self._codes.grow(len(self._sums))

    def _fold(self, slots: npt.NDArray[np.intp], columns: Columns) -> None:
        np.add.at(self._counts[:, 0], slots, columns["success_count"])
        np.add.at(self._counts[:, 1], slots, columns["fail_count"])
        np.add.at(self._sums, slots, columns["sum_us"])
        np.minimum.at(self._mins, slots, columns["min_us"])
        np.maximum.at(self._maxs, slots, columns["max_us"])
        self._buckets.add(slots, columns["bucket_rows"], columns["bucket_indexes"],
                          columns["bucket_counts"])  # fmt: skip
        self._codes.add(slots, columns["status_rows"], columns["status_codes"],
                        columns["status_counts"])  # fmt: skip
        self._dirty.update(slots.tolist())


def _add_errors(errors: dict[str, int], incoming: Any) -> None:
    """A delta's error counts (a protobuf map) added, under the cap on distinct errors."""
    if len(errors) + len(incoming) <= MAX_DISTINCT_ERRORS:  # no cap to apply: plain sums
        get = errors.get
        for error in incoming:  # by key: protobuf maps' items() is twice as slow
            errors[error] = get(error, 0) + incoming[error]
    else:
        for error, count in incoming.items():
            add_error(errors, error, count)


class WindowCounts:
    """Counts by (slot, index < width), each slot's in a window of one pool: the indexes from
    the least to the greatest it has counted. An index is then its slot's base offset away, as
    in a dense row, while a name seen once holds a cell or two, not a row of ``width`` (review
    D3). A window that must widen moves to the pool's end; the pool is compacted when more of it
    is left behind than is in windows. An index past the width counts in the last."""

    def __init__(self, width: int, capacity: int) -> None:
        self._width = width
        self._base = np.zeros(capacity, dtype=np.int64)  # pool offset of the slot's index 0
        self._low = np.zeros(capacity, dtype=np.int64)  # its window: indexes low..high-1
        self._high = np.zeros(capacity, dtype=np.int64)
        self._pool = np.zeros(POOL_MIN, dtype=np.uint64)
        self._used = 0  # pool cells handed out, the ones left behind included
        self._held = 0  # pool cells in windows

    def grow(self, capacity: int) -> None:
        """Room for slots below ``capacity`` (their windows empty)."""
        more = np.zeros(capacity - len(self._base), dtype=np.int64)
        self._base, self._low, self._high = (
            np.concatenate([array, more]) for array in (self._base, self._low, self._high)
        )

    def add(
        self,
        slots: npt.NDArray[np.intp],
        rows: npt.NDArray[Any],
        indexes: npt.NDArray[Any],
        counts: npt.NDArray[Any],
    ) -> None:
        """Row i (at ``slots[i]``) adds the next ``rows[i]`` (index, count) entries."""
        if not len(indexes):
            return
        index = indexes.astype(np.int64)
        firsts = np.cumsum(rows.astype(np.int64))
        firsts -= rows
        held = slots
        if not rows.all():  # rows without entries (a flip's) have no window to check
            filled = rows > 0
            held, firsts = slots[filled], firsts[filled]
        # each row's least and greatest index: a worker sends them sorted, but nothing relies on it
        low, high = np.minimum.reduceat(index, firsts), np.maximum.reduceat(index, firsts)
        if high.max() >= self._width:
            np.minimum(index, self._width - 1, out=index)
            np.minimum(low, self._width - 1, out=low)
            np.minimum(high, self._width - 1, out=high)
        if (low < self._low[held]).any() or (high >= self._high[held]).any():
            # a window to make or widen: a new name, or a time outside its window so far
            outside = (low < self._low[held]) | (high >= self._high[held])
            self._widen(held[outside], low[outside], high[outside] + 1)
        where = np.repeat(self._base[slots], rows)
        where += index
        # Same dtypes on both sides: ufunc.at's casting path is ~25x slower than its fast path.
        np.add.at(self._pool, where, counts.astype(np.uint64, copy=False))

    def take(self, slots: npt.NDArray[np.int64]) -> list[dict[int, int]]:
        """Each slot's counts by index, those above zero; the slots' windows left zeroed."""
        low, sizes = self._low[slots], self._high[slots] - self._low[slots]
        where = _spans(self._base[slots] + low, sizes)
        cells = self._pool[where]
        self._pool[where] = 0
        filled = np.flatnonzero(cells)
        spans = _spans(low, sizes)[filled]
        # the histograms' shared key objects (metrics.BUCKET_KEYS: a merge finds them by identity)
        shared = not spans.size or int(spans.max()) < len(_KEY_OBJECTS)
        indexes = (_KEY_OBJECTS[spans] if shared else spans).tolist()
        counts = cells[filled].tolist()
        cuts = [0, *np.searchsorted(filled, np.cumsum(sizes)).tolist()]
        return [
            dict(zip(indexes[a:b], counts[a:b], strict=True)) for a, b in itertools.pairwise(cuts)
        ]

    def _widen(
        self, slots: npt.NDArray[np.intp], low: npt.NDArray[np.int64], high: npt.NDArray[np.int64]
    ) -> None:
        """The slots' windows made to hold ``low..high-1`` too, at the pool's end."""
        slots, row = np.unique(slots, return_inverse=True)  # a slot twice: one window for both
        least = np.full(len(slots), self._width, dtype=np.int64)
        most = np.zeros(len(slots), dtype=np.int64)
        np.minimum.at(least, row, low)
        np.maximum.at(most, row, high)
        old_low, old_high = self._low[slots], self._high[slots]
        kept = old_high - old_low  # 0: a window made now
        least = np.where(kept > 0, np.minimum(least, old_low), least)
        most = np.where(kept > 0, np.maximum(most, old_high), most)
        sizes = most - least
        added = int(sizes.sum())
        self._reserve(self._used + added)
        base = self._used + np.cumsum(sizes) - sizes - least
        moved = self._pool[_spans(self._base[slots] + old_low, kept)]
        self._pool[_spans(base + old_low, kept)] = moved
        self._base[slots], self._low[slots], self._high[slots] = base, least, most
        self._used += added
        self._held += added - int(kept.sum())
        if self._used - self._held > max(self._held, POOL_MIN):
            self._compact()

    def _reserve(self, cells: int) -> None:
        if cells > len(self._pool):
            more = np.zeros(max(cells, 2 * len(self._pool)) - len(self._pool), dtype=np.uint64)
            self._pool = np.concatenate([self._pool, more])

    def _compact(self) -> None:
        """Every window moved to the start of a new pool, in slot order."""
        sizes = self._high - self._low
        starts = np.cumsum(sizes) - sizes
        pool = np.zeros(max(POOL_MIN, 2 * self._held), dtype=np.uint64)
        pool[_spans(starts, sizes)] = self._pool[_spans(self._base + self._low, sizes)]
        self._pool, self._base, self._used = pool, starts - self._low, self._held


class CodeCounts:
    """Counts by (slot, status code) in a column per code the run has seen: a run sees a handful,
    so a slot holds a few cells however many names there are (a hostile worker that sends every
    code makes them 1,000: as many as a status code has values)."""

    def __init__(self, capacity: int) -> None:
        self._column = np.full(CODES, -1, dtype=np.int64)  # by code: its column, or -1
        self._codes = np.zeros(0, dtype=np.int64)  # by column: its code
        self._counts = np.zeros((capacity, 4), dtype=np.uint64)

    def grow(self, capacity: int) -> None:
        more = np.zeros((capacity - len(self._counts), self._counts.shape[1]), dtype=np.uint64)
        self._counts = np.concatenate([self._counts, more])

    def add(
        self,
        slots: npt.NDArray[np.intp],
        rows: npt.NDArray[Any],
        codes: npt.NDArray[Any],
        counts: npt.NDArray[Any],
    ) -> None:
        """Row i (at ``slots[i]``) adds the next ``rows[i]`` (code < CODES, count) entries."""
        if not len(codes):
            return
        column = self._column[codes]
        if column.min() < 0:  # a code the run had not seen
            self._add_columns(np.unique(codes[column < 0]))
            column = self._column[codes]
        where = np.repeat(slots * self._counts.shape[1], rows)
        where += column
        np.add.at(self._counts.reshape(-1), where, counts.astype(np.uint64, copy=False))

    def take(self, slots: npt.NDArray[np.int64]) -> list[dict[int, int]]:
        """Each slot's counts by code, those above zero, in code order; the slots left zeroed."""
        order = np.argsort(self._codes)
        counts = self._counts[slots][:, order]
        self._counts[slots] = 0
        rows, columns = np.nonzero(counts)
        codes, found = self._codes[order][columns].tolist(), counts[rows, columns].tolist()
        cuts = [0, *np.searchsorted(rows, np.arange(len(slots)), "right").tolist()]
        return [dict(zip(codes[a:b], found[a:b], strict=True)) for a, b in itertools.pairwise(cuts)]

    def _add_columns(self, codes: npt.NDArray[Any]) -> None:
        seen = len(self._codes)
        self._column[codes] = np.arange(seen, seen + len(codes))
        self._codes = np.concatenate([self._codes, codes.astype(np.int64)])
        width = self._counts.shape[1]
        if len(self._codes) > width:
            wider = np.zeros((len(self._counts), max(2 * width, len(self._codes))), np.uint64)
            wider[:, :width] = self._counts
            self._counts = wider


def _spans(starts: npt.NDArray[np.int64], sizes: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The positions ``starts[i] .. starts[i] + sizes[i] - 1`` of every i, in order."""
    ends = np.cumsum(sizes)
    total = int(ends[-1]) if len(ends) else 0
    spans: npt.NDArray[np.int64] = np.repeat(starts - ends + sizes, sizes) + np.arange(total)
    return spans


def _add_rows(stats: Stats, columns: Columns) -> None:
    """A table's rows added to one ``Stats`` as Python ints: the schedule lag's (one row at
    most), too few for the numpy fold, and its buckets past ``WIDTH`` stay exact."""
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
