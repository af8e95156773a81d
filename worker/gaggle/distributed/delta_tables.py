"""A worker's delta decoded once into numpy columns: what the checks read, then the fold.

Both read every table of every delta a manager receives; each decoding its own cost a fifth of
a manager's core at 1,000 workers (benchmarks/manager_scale.py --profile). A column travels at
the narrowest width that holds its values (``codec``): it is read with ``np.frombuffer`` at that
width and widened once, to int64 (uint64 for the uint64 columns and the entries' counts), since
the checks' sums must not wrap and ``ufunc.at`` takes its fast path only for the same dtype as
the totals it adds to.

A row's key is an id its stream named earlier or in this delta: ``StreamKeys`` holds a stream's
names, and decoding reads them without changing them; the ``DeltaLedger`` enters a delta's new
names once the delta passes its checks, so a delta refused leaves none behind. An id named twice
or never is malformed, as is a width beyond the column's.

The format is ``codec``'s: its column tables say which fields a table has and how wide each may
be, and its ``check_shape`` is the check every reader makes before reading anything. A
plain-Python reference decoder, tests/support/reference_codec.py, must give the same numbers
exactly. numpy is a manager's alone.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from gaggle.distributed.codec import (
    ENTRY_COLUMNS,
    KEY_COLUMNS,
    NAMED_COLUMNS,
    NARROW,
    ROW_COLUMNS,
    check_shape,
    widths,
)
from gaggle.wire import gaggle_pb2 as wire

Columns = dict[str, npt.NDArray[Any]]
Names = dict[int, Any]  # a table's keys by id
_COLUMNS = (NAMED_COLUMNS | ROW_COLUMNS | ENTRY_COLUMNS).items()
_WIRE = {  # (signed, width) → the little-endian dtype a column travels in
    (signed, width): np.dtype(f"<{'i' if signed else 'u'}{width}") for signed, width in NARROW
}
_WIDENED = {name: np.dtype(np.uint64 if code == "Q" else np.int64) for name, code in _COLUMNS}
# the entries' counts are added to uint64 totals as they are
_WIDENED["bucket_counts"] = _WIDENED["status_counts"] = np.dtype(np.uint64)
_WIDTHS = {code: widths(code) for _, code in _COLUMNS}


class Table(NamedTuple):
    keys: list[Any]  # by row: (method, name) or (taskset, task)
    columns: Columns
    named: Names  # the keys the table named for the first time on its stream


class DeltaTables(NamedTuple):
    requests: Table
    tasks: Table
    schedule_lag: Table  # an open model's one row; no rows in a closed model's delta


class StreamKeys:
    """The keys one worker's stream has named, by table (requests, tasks, schedule_lag)."""

    def __init__(self) -> None:
        self.tables: tuple[Names, Names, Names] = ({}, {}, {})

    def enter(self, tables: DeltaTables) -> None:
        """A delta's new names, once it has passed its checks."""
        for known, table in zip(self.tables, tables, strict=True):
            if table.named:
                known.update(table.named)


NO_ROWS = Table([], {name: np.zeros(0, _WIDENED[name]) for name, _ in _COLUMNS}, {})


def decode(delta: wire.Delta, keys: StreamKeys | None = None) -> DeltaTables:
    """Every table of ``delta``, its keys those its stream named (``keys``; None: a delta read
    alone); ValueError, saying what, when its columns do not fit."""
    requests, tasks, lag = (StreamKeys() if keys is None else keys).tables
    return DeltaTables(
        _decode("requests", delta.requests, False, requests),
        _decode("tasks", delta.tasks, True, tasks),
        _decode("schedule_lag", delta.schedule_lag, False, lag)
        if delta.HasField("schedule_lag")
        else NO_ROWS,
    )


def _decode(field: str, table: wire.Table, is_task: bool, known: Names) -> Table:
    try:
        return decode_table(table, is_task, known)
    except ValueError as error:
        raise ValueError(f"{field}: {error}") from None


def decode_table(table: wire.Table, is_task: bool, known: Names) -> Table:
    """One table, its rows' keys looked up in ``known`` and in the keys it names itself."""
    first, second = KEY_COLUMNS[is_task]
    firsts, seconds = getattr(table, first), getattr(table, second)
    columns: Columns = {name: _column(table, name, code) for name, code in _COLUMNS}
    check_shape(
        {first: len(firsts), second: len(seconds), "key_ids": len(columns["key_ids"])},
        {name: len(columns[name]) for name in ROW_COLUMNS},
        {name: len(columns[name]) for name in ENTRY_COLUMNS},
        int(columns["bucket_rows"].sum()),
        int(columns["status_rows"].sum()),
    )
    named: Names = {}
    if len(firsts):
        named = dict(
            zip(columns["key_ids"].tolist(), zip(firsts, seconds, strict=True), strict=True)
        )
        if len(named) < len(firsts):
            raise ValueError(f"a key id named twice in one table: {columns['key_ids'].tolist()}")
        again = next((key_id for key_id in named if key_id in known), None)
        if again is not None:
            raise ValueError(f"key id {again} named again (its stream named it before)")
    ids = columns["row_keys"].tolist()
    keys = list(map(known.get, ids))
    if None in keys:  # keys named by this delta, or never
        for row, key in enumerate(keys):
            if key is None and (key := named.get(ids[row])) is None:
                raise ValueError(f"row {row}: key id {ids[row]} was never named on its stream")
            keys[row] = key
    return Table(keys, columns, named)


def _column(table: wire.Table, name: str, typecode: str) -> npt.NDArray[Any]:
    """A column read at the width it travels at, widened."""
    data: bytes = getattr(table, name)
    if not data:
        return NO_ROWS.columns[name]
    width, allowed = data[0], _WIDTHS[typecode]
    if width not in allowed:
        said = ", ".join(map(str, allowed))
        raise ValueError(f"{name}: a width of {width} bytes (want one of {said})")
    if (len(data) - 1) % width:
        raise ValueError(f"{name}: {len(data) - 1} bytes are not whole {width}-byte items")
    values = np.frombuffer(data, _WIRE[typecode.islower(), width], offset=1)
    return values.astype(_WIDENED[name])
