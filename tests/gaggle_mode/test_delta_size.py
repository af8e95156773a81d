"""A worker's delta is sized by what changed since the last one (issue metrics-at-scale, item 3):
only the request names requested in that second go on the wire, each with only the histogram
buckets and status codes of that second, however many names the run has seen and however often
the totals were read meanwhile. The deltas come from the worker's own path — its ``Aggregator``
drained by its shipping ``Ledger``, encoded by ``to_delta`` for its stream, serialized — and the
manager's fold of them (decoded with the stream's keys, checked, folded, as the servicer does) is
checked against the plain-Python reference decoder."""

from __future__ import annotations

import math
import random

from gaggle.distributed.codec import KeyIds, to_delta
from gaggle.distributed.delta_checks import DeltaLedger
from gaggle.distributed.delta_tables import decode
from gaggle.distributed.merged_tally import Totals
from gaggle.metrics import Aggregator, Ledger, Metrics, RequestRecord, TaskRecord
from gaggle.wire import gaggle_pb2 as wire
from tests.support.reference_codec import Names, column, merge_delta, values

NAMES = [f"/api/resource/{i}" for i in range(200)]


def request(rng: random.Random, name: str, status: int = 200) -> RequestRecord:
    """A GET of ``name`` taking 1 ms .. 2 s (log-uniform: a wide spread of buckets)."""
    elapsed_us = int(math.exp(rng.uniform(math.log(1_000), math.log(2_000_000))))
    return RequestRecord(
        0, "GET", name, name, name, False, elapsed_us, status, status < 400, False, 0
    )  # fmt: skip


def shipped(ledger: Ledger, sequence: int, keys: KeyIds) -> wire.Delta:
    """What the worker sends for the second that just ended on its stream (``keys``), as the
    manager receives it."""
    delta = to_delta(ledger.take_delta(), sequence, users_running=50, final=False, keys=keys)
    return wire.Delta.FromString(delta.SerializeToString())


def entries(table: wire.Table) -> tuple[int, int]:
    """(histogram entries, status-code entries) a table carries."""
    return len(values("I", table.bucket_counts)), len(values("I", table.status_counts))


def rows(table: wire.Table) -> int:
    return len(values("I", table.row_keys))


def test_after_a_second_with_one_name_of_200_requested_the_delta_carries_one_row() -> None:
    rng = random.Random(24)
    aggregator = Aggregator()
    ledger, keys = Ledger(aggregator, shipping=True), KeyIds()
    for name in NAMES:  # the first second: every name, 40 times, a spread of times and codes
        for status in rng.choices((200, 302, 404, 500), (94, 3, 2, 1), k=40):
            aggregator.record_request(request(rng, name, status))
        aggregator.record_task(TaskRecord(0, 0, 0, "t", 5_000, True, 0))
    full = shipped(ledger, 1, keys)
    ledger.metrics()  # a scrape between the deltas takes nothing from the next one
    aggregator.record_request(request(rng, NAMES[7]))  # the second second: one request
    one = shipped(ledger, 2, keys)
    quiet = shipped(ledger, 3, keys)  # a second without requests

    assert (rows(full.requests), list(full.requests.name)) == (200, NAMES)  # named once
    assert entries(full.requests)[0] > 200 * 30  # ~38 buckets a name: the spread is wide
    assert (rows(one.requests), list(one.requests.name)) == (1, [])  # named before: its id
    assert one.requests.row_keys == column("I", 7)
    assert entries(one.requests) == (1, 1)  # this second's bucket and code, not the name's ~38
    assert (rows(one.tasks), len(one.errors)) == (0, 0)
    assert (rows(quiet.requests), rows(quiet.tasks)) == (0, 0)
    sizes = [len(delta.SerializeToString()) for delta in (full, one, quiet)]
    assert sizes[1] * 400 < sizes[0], sizes  # measured: 39,686, 61 and 8 bytes (wide: 71,219, 112)
    assert sizes[2] < 16, sizes


def test_a_flip_of_an_earlier_request_ships_its_row_without_buckets() -> None:
    """``set_failure`` after the delta that counted the request: one row, -1 success, +1
    failure, no histogram entry (its time was shipped already)."""
    rng = random.Random(5)
    aggregator = Aggregator()
    ledger, keys = Ledger(aggregator, shipping=True), KeyIds()
    sent = [request(rng, name) for name in NAMES]
    for record in sent:
        aggregator.record_request(record)
    shipped(ledger, 1, keys)
    aggregator.flip_request(sent[3]._replace(success=False, update=True))
    flip = shipped(ledger, 2, keys)
    assert (flip.requests.row_keys, list(flip.requests.name)) == (column("I", 3), [])
    assert entries(flip.requests) == (0, 0)
    assert (flip.requests.success_count, flip.requests.fail_count) == (b"\x01\xff", b"\x01\x01")
    assert flip.requests.min_us == column("Q", 2**62, width=8)  # no timings: min_us says none


def test_the_manager_folds_small_deltas_into_the_totals_of_all_names() -> None:
    """Seconds in which a few of the 200 names were requested, folded one after another: the
    manager's totals equal the reference merge and what the worker counted, every name whole."""
    rng = random.Random(11)
    aggregator = Aggregator()
    ledger, keys = Ledger(aggregator, shipping=True), KeyIds()
    stream, names = DeltaLedger(), Names()  # the manager's side of the stream, and the reference's
    totals, reference = Totals(), Metrics()
    for sequence in range(1, 41):
        busy = NAMES if sequence == 1 else rng.sample(NAMES, rng.randrange(0, 4))
        for name in busy:
            for _ in range(rng.randrange(1, 6)):
                aggregator.record_request(request(rng, name, rng.choice((200, 404))))
        delta = shipped(ledger, sequence, keys)
        assert rows(delta.requests) == len(busy)
        assert len(delta.requests.name) == (200 if sequence == 1 else 0)
        merge_delta(reference, delta, names)
        tables = decode(delta, stream.keys)  # as the servicer does: decoded once, checked, folded
        assert stream.check(delta, True, tables) == ""
        totals.merge(delta, tables)
        if sequence % 10 == 0:  # a read mid-run, then more small deltas on the same names
            assert totals.metrics() == reference
    assert totals.metrics() == reference == ledger.metrics()
    assert len(reference.requests) == 200
