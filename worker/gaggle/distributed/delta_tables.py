"""A worker's delta decoded once into numpy columns: what the checks read, then the fold.

Both read every table of every delta a manager receives; each decoding its own cost a fifth of
a manager's core at 1,000 workers (benchmarks/manager_scale.py --profile). The arrays are views
of the message's bytes (``np.frombuffer``: no copy), little-endian as on the wire, in sized
dtypes ("<i8", not "q": C long long is not numpy's int64 on Linux, and ``ufunc.at`` takes its
fast path only for the same dtype).

The format is ``codec``'s: its column tables say which fields a table has and how wide each is,
and its ``check_shape`` is the check every reader makes before reading anything. A plain-Python
reference decoder, tests/support/reference_codec.py, must give the same numbers exactly.
numpy is a manager's alone.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from gaggle.distributed.codec import ENTRY_COLUMNS, KEY_COLUMNS, ROW_COLUMNS, check_shape
from gaggle.wire import gaggle_pb2 as wire

Columns = dict[str, npt.NDArray[Any]]
DTYPES = {
    code: np.dtype(f"<{np.dtype(code).kind}{np.dtype(code).itemsize}")
    for code in (ROW_COLUMNS | ENTRY_COLUMNS).values()
}


_COLUMNS = (ROW_COLUMNS | ENTRY_COLUMNS).items()


class Table(NamedTuple):
    keys: list[Any]  # by row: (method, name) or (taskset, task)
    columns: Columns


class DeltaTables(NamedTuple):
    requests: Table
    tasks: Table
    schedule_lag: Table  # an open model's one row; no rows in a closed model's delta


NO_ROWS = Table([], {name: np.zeros(0, DTYPES[code]) for name, code in _COLUMNS})


def decode(delta: wire.Delta) -> DeltaTables:
    """Every table of ``delta``; ValueError, saying what, when its columns do not fit."""
    lag = decode_table(delta.schedule_lag, False) if delta.HasField("schedule_lag") else NO_ROWS
    return DeltaTables(decode_table(delta.requests, False), decode_table(delta.tasks, True), lag)


def decode_table(table: wire.Table, is_task: bool) -> Table:
    first, second = KEY_COLUMNS[is_task]
    firsts, seconds = getattr(table, first), getattr(table, second)
    if len(firsts) != len(seconds):
        raise ValueError(f"{len(firsts)} {first} keys but {len(seconds)} {second} keys")
    keys = list(zip(firsts, seconds, strict=True))
    columns: Columns = {}
    for name, code in _COLUMNS:
        data, dtype = getattr(table, name), DTYPES[code]
        if len(data) % dtype.itemsize:
            raise ValueError(f"{name}: {len(data)} bytes are not whole {dtype.itemsize}-byte items")
        columns[name] = np.frombuffer(data, dtype=dtype)
    check_shape(
        len(keys),
        {name: len(columns[name]) for name in ROW_COLUMNS},
        {name: len(columns[name]) for name in ENTRY_COLUMNS},
        int(columns["bucket_rows"].sum()),
        int(columns["status_rows"].sum()),
    )
    return Table(keys, columns)
