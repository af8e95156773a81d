"""Whether a worker's delta can be true, checked before the manager folds anything of it.

A token (on loopback, nothing) is all a peer needs to send deltas, and the manager's totals are
made of nothing else: a buggy or hostile peer folded negative and absurd counts into a report
(review D18: ``requests_total: -999925``), and a malformed delta only showed as the worker being
"silent". Every delta is checked whole against what any real worker's delta satisfies: its
columns fit together at widths they may have, and its rows' keys are ids its stream named once
(``delta_tables``; the ledger holds the stream's names and takes a delta's new ones only when
the delta passes); a row's requests (successes + failures) equal its timings and, for a
request, its status codes; its times lie within its min and max; nothing counts past what a
worker does in a delta; a ``set_failure``/``set_success`` flip takes back no more than the worker
counted before. The first thing that fails is the reason, naming the row, the field and the
value; the servicer drops the worker with it and folds none of that delta.

A counter added to the delta is checked here too, if it cannot be negative: a delta's own
(a ``uint64`` field) in ``COUNTERS``, a row's (an ``int64`` column) in ``ROW_COUNTERS``.

numpy is a manager's alone: the servicer imports this module when a manager is made.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from gaggle.distributed.delta_tables import Columns, DeltaTables, StreamKeys, decode
from gaggle.metrics import NO_MIN, bucket_bounds
from gaggle.options import USERS_PER_RUN
from gaggle.wire import gaggle_pb2 as wire

# No worker does 10^12 of anything in the second a delta covers (a core sends ~15,700 requests a
# second); the cap also keeps the totals' int64 and uint64 sums far from wrapping.
MAX_PER_DELTA = 10**12
# the bucket of the longest time a row may hold (just under NO_MIN: 146,000 years)
MAX_BUCKET = bisect.bisect_left(range(1 << 16), NO_MIN - 1, key=lambda i: bucket_bounds(i)[1])
MAX_STATUS = 999  # an HTTP status has three digits; 0 when no response came
COUNTERS: tuple[str, ...] = (  # Delta fields, each 0..MAX_PER_DELTA
    "arrivals_dropped",
    "requests_abandoned",
    "tasks_abandoned",
)
ROW_COUNTERS: tuple[str, ...] = ()  # Table columns beside a row's requests, each 0..MAX_PER_DELTA
_TABLES = (  # field, what a row counts, a request's (verdicts flip, a status each)
    ("requests", "requests", True),
    ("tasks", "runs", False),
    ("schedule_lag", "timed starts", False),
)

Rule = tuple[npt.NDArray[np.bool_], Callable[[int], str]]  # rows that break it, and why
Flips = tuple[npt.NDArray[np.intp], npt.NDArray[np.int64]]  # request rows' slots, their counts


class DeltaLedger:
    """What one worker's stream has sent: its last delta, the keys it named (``keys``: decode
    its deltas with them), and per request row its successes and failures, so that a flip's -1
    can be told from a lie."""

    def __init__(self) -> None:
        self.sequence = 0
        self.final = False
        self.keys = StreamKeys()
        self._slots: dict[tuple[str, str], int] = {}
        self._counts = np.zeros((16, 2), dtype=np.int64)  # success, fail: all deltas so far

    def check(self, delta: wire.Delta, started: bool, tables: DeltaTables | None = None) -> str:
        """Why ``delta`` cannot come from a real worker ("" when it can, and then it is entered
        here: call once per new sequence, right before folding it). ``tables``: the delta
        decoded already, with ``keys`` (the fold reads the same)."""
        try:
            why, flips, tables = self._why_not(delta, started, tables)
        except ValueError as error:  # columns that do not fit together
            return f"malformed: {error}"
        if not why:
            self.sequence, self.final = delta.sequence, delta.final
            if tables is not None:
                self.keys.enter(tables)
            if flips is not None:
                slots, counts = flips
                self._counts[slots] += counts
        return why

    def _why_not(
        self, delta: wire.Delta, started: bool, tables: DeltaTables | None
    ) -> tuple[str, Flips | None, DeltaTables | None]:
        if not started:
            return "a delta before its Start", None, None
        if self.final:
            return f"sequence {delta.sequence} after its final delta", None, None
        if delta.sequence != self.sequence + 1:
            after = f"sequence {delta.sequence} after {self.sequence}"
            return f"{after} (deltas {self.sequence + 1}..{delta.sequence - 1} missing)", None, None
        # every table decoded first: a malformed one is said so, whatever else
        decoded = decode(delta, self.keys) if tables is None else tables
        why = _scalars_why_not(delta)
        for (field, noun, flips), table in zip(_TABLES, decoded, strict=True):
            why = why or _rows_why_not(field, noun, flips, table.keys, table.columns)
        keys, columns = decoded.requests.keys, decoded.requests.columns
        if why or not keys:
            return why, None, decoded
        return *self._flips_why_not(keys, columns), decoded

    def _flips_why_not(self, keys: list[Any], columns: Columns) -> tuple[str, Flips]:
        """A flip moves a request between successes and failures: neither may go below zero
        over everything this worker sent."""
        get = self._slots.get
        found = [get(key) for key in keys]
        if None in found:  # rows this worker never sent before
            found = [self._slot(k) if s is None else s for k, s in zip(keys, found, strict=True)]
        slots = np.array(found, dtype=np.intp)
        counts = np.stack([columns["success_count"], columns["fail_count"]], axis=1)
        after = self._counts[slots] + counts
        for column, field in enumerate(("success_count", "fail_count")):
            row = _first(after[:, column] < 0)
            if row is not None:
                so_far = int(self._counts[slots[row], column])
                value = int(counts[row, column])
                return (
                    f"{_label('requests', keys[row])}: {field} {value} takes back more than the "
                    f"{so_far} this worker counted"
                ), (slots, counts)
        return "", (slots, counts)

    def _slot(self, key: tuple[str, str]) -> int:
        """A new request row's slot."""
        slot = self._slots[key] = len(self._slots)
        if slot == len(self._counts):
            self._counts = np.concatenate([self._counts, np.zeros_like(self._counts)])
        return slot


def _scalars_why_not(delta: wire.Delta) -> str:
    if delta.users_running > USERS_PER_RUN:
        return f"users_running {delta.users_running} (a gaggle runs ≤ {USERS_PER_RUN:,})"
    for field in COUNTERS:
        value = getattr(delta, field)
        if value > MAX_PER_DELTA:
            return f"{field} {value} in one delta (≤ {MAX_PER_DELTA:.0e})"
    errors = delta.errors
    for error in errors:  # by key: a protobuf map's items() and values() are slower
        if errors[error] > MAX_PER_DELTA:
            return f"errors[{error[:80]!r}] {errors[error]} in one delta (≤ {MAX_PER_DELTA:.0e})"
    return ""


def _rows_why_not(field: str, noun: str, flips: bool, keys: list[Any], columns: Columns) -> str:
    """The first row of a table that no worker could send, said; "" when there is none."""
    if not keys:
        return ""
    if len(set(keys)) != len(keys):
        return f"{field}: a row appears twice"
    if field == "schedule_lag" and len(keys) > 1:
        return f"schedule_lag: {len(keys)} rows (a delta has one)"
    rules = _row_rules(field, noun, flips, columns)
    if np.logical_or.reduce([mask for mask, _ in rules]).any():  # the rare case: which, why
        for mask, reason in rules:
            if (row := _first(mask)) is not None:
                return f"{_label(field, keys[row])}: {reason(row)}"
    return _entries_why_not(field, keys, columns)


def _row_rules(field: str, noun: str, flips: bool, columns: Columns) -> list[Rule]:
    """What each row must satisfy, in order: a mask of the rows that do not, and the reason."""
    success, fail = columns["success_count"], columns["fail_count"]
    rules = [  # first: the sums below cannot wrap
        _in_range(name, columns[name], flips and name in ("success_count", "fail_count"), noun)
        for name in ("success_count", "fail_count", *ROW_COUNTERS)
    ]
    count = success + fail
    timed = _per_row(columns["bucket_counts"], columns["bucket_rows"])
    sums, least, most = columns["sum_us"], columns["min_us"], columns["max_us"]

    def counted(i: int) -> str:
        return f"{count[i]} {noun} (success_count {success[i]} + fail_count {fail[i]})"

    def times(i: int) -> str:
        return f"min_us {least[i]}, max_us {most[i]}, sum_us {sums[i]} over {timed[i]} timings"

    rules += [
        (count < 0, lambda i: f"{counted(i)} < 0"),
        (count != timed, lambda i: f"{counted(i)} but {timed[i]} timings"),
    ]
    if flips:  # a request has one status (0: no response), whatever its verdict became
        statuses = _per_row(columns["status_counts"], columns["status_rows"])
        rules.append((statuses != count, lambda i: f"{counted(i)} but {statuses[i]} statuses"))
    else:
        rules.append((columns["status_rows"] > 0, lambda i: f"status codes on a row of {noun}"))
    if field == "schedule_lag":
        rules.append((fail != 0, lambda i: f"fail_count {fail[i]} (a start never fails)"))
    empty = timed == 0
    untimed = empty & ((least != NO_MIN) | (most != 0) | (sums != 0))
    mean = sums // np.maximum(timed, 1).astype(np.uint64)  # whole µs: exact, no product to wrap
    outside = (least > most) | (most >= NO_MIN) | (mean < least) | (mean > most)
    rules += [
        (untimed, lambda i: f"no timings but {times(i)}"),
        (~empty & outside, lambda i: f"{times(i)}: not within min and max"),
    ]
    return rules


def _in_range(name: str, values: npt.NDArray[Any], flips: bool, noun: str) -> Rule:
    """A count within what a delta holds: a flip's count may be negative (set_failure)."""
    low = -MAX_PER_DELTA if flips else 0
    allowed = f"{low:.0e}..{MAX_PER_DELTA:.0e}" if flips else f"0..{MAX_PER_DELTA:.0e}"
    allowed += "" if flips or name in ROW_COUNTERS else f"; {noun} never flip"
    outside = (values < low) | (values > MAX_PER_DELTA)
    return outside, lambda i: f"{name} {values[i]} (want {allowed})"


def _entries_why_not(field: str, keys: list[Any], columns: Columns) -> str:
    """A histogram bucket or status code beyond any there is, said with its row."""
    for name, rows, most, one in (
        ("bucket_indexes", "bucket_rows", MAX_BUCKET, "bucket_index"),
        ("status_codes", "status_rows", MAX_STATUS, "status_code"),
    ):
        entry = _first(columns[name] > most)
        if entry is not None:
            row = int(np.searchsorted(np.cumsum(columns[rows], dtype=np.int64), entry, "right"))
            value = int(columns[name][entry])
            return f"{_label(field, keys[row])}: {one} {value} (want ≤ {most})"
    return ""


def _per_row(values: npt.NDArray[Any], rows: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """Each row's sum of its entries (``rows[i]`` entries each, in order)."""
    ends = np.cumsum(rows, dtype=np.int64)
    running = np.concatenate([[0], np.cumsum(values, dtype=np.int64)])
    sums: npt.NDArray[np.int64] = running[ends] - running[ends - rows.astype(np.int64)]
    return sums


def _first(mask: npt.NDArray[np.bool_]) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if len(hits) else None


def _label(field: str, key: Any) -> str:
    """A row as a log line may show it (a hostile name cannot break the line)."""
    if field == "tasks":
        return f"task {key[0]}.{key[1]}"
    if field == "schedule_lag":
        return "schedule lag"
    text = f"request {key[0]} {key[1]}"
    return text[:100] if text.isprintable() else repr(text[:100])
