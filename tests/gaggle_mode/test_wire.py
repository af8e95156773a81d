"""Gaggle mode's foundations: the generated stubs match the .proto, deltas cross the wire
exactly, users are split as one process would number them, and the rules hash tells tests apart."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from gaggle import TaskSet, between, task
from gaggle.distributed.codec import to_delta
from gaggle.distributed.merged_tally import WIDTH, Totals
from gaggle.distributed.rules import rules_difference, rules_hash, rules_json
from gaggle.distributed.shares import split_users
from gaggle.metrics import Aggregator, Metrics, RequestRecord, TaskRecord
from gaggle.metrics.aggregate import MAX_DISTINCT_ERRORS
from gaggle.metrics.histogram import bucket_index
from gaggle.wire import gaggle_pb2 as wire
from tests.conftest import ROOT
from tests.support.reference_codec import column, from_delta, merge_delta

GENERATED = ("gaggle_pb2.py", "gaggle_pb2.pyi", "gaggle_pb2_grpc.py", "gaggle_pb2_grpc.pyi")


def test_committed_stubs_match_the_proto(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "proto" / "generate.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    for name in GENERATED:
        committed = (ROOT / "worker" / "gaggle" / "wire" / name).read_text()
        assert (tmp_path / name).read_text() == committed, f"{name} drifted: run `make proto`"


def test_a_delta_crosses_the_wire_exactly() -> None:
    rng = random.Random(8)
    aggregator = Aggregator()
    for i in range(3000):
        status = rng.choice([200, 302, 404, 500, 0])
        aggregator.record_request(
            RequestRecord(
                i, rng.choice(["GET", "POST"]), rng.choice(["/", "/a", "b c"]), "u", "u", False,
                rng.randrange(1, 5_000_000), status, status in (200, 302), False, i % 9,
                "" if status else "connect error: refused",
            )
        )  # fmt: skip
        aggregator.record_task(TaskRecord(i, rng.randrange(2), rng.randrange(4), "t", i, True, 0))
    metrics = aggregator.drain()
    delta = to_delta(metrics, sequence=7, users_running=12, final=False)
    received = wire.Delta.FromString(delta.SerializeToString())
    assert (received.sequence, received.users_running, received.final) == (7, 12, False)
    assert from_delta(received) == metrics


def test_deltas_merged_from_the_wire_equal_merged_metrics() -> None:
    rng = random.Random(3)
    deltas, expected = [], Metrics()
    for sequence in range(1, 6):
        aggregator = Aggregator()
        for i in range(500):
            status = rng.choice([200, 500])
            record = RequestRecord(
                i, "GET", rng.choice(["/", "/a"]), "u", "u", False, rng.randrange(1, 9_000_000),
                status, status == 200, False, 0,
            )  # fmt: skip
            aggregator.record_request(record)
            if status == 200 and rng.random() < 0.1:
                aggregator.flip_request(record._replace(success=False, update=True))
        metrics = aggregator.drain()
        expected.merge(metrics)
        deltas.append(to_delta(metrics, sequence, 1, False))
    totals = Metrics()
    for delta in deltas:
        merge_delta(totals, delta)
    assert totals == expected
    folded = Totals()  # the manager's vectorised fold gives the same numbers
    for delta in deltas:
        folded.merge(wire.Delta.FromString(delta.SerializeToString()))
    assert folded.metrics() == expected


def test_the_managers_fold_equals_the_reference_merge_and_reads_between_deltas() -> None:
    rng = random.Random(5)
    totals, reference = Totals(), Metrics()
    names = [f"/n{i}" for i in range(40)]  # more rows than the fold's first allocation
    for sequence in range(1, 8):
        aggregator = Aggregator()
        for i in range(800):
            status = rng.choice([200, 404, 0])
            elapsed = rng.choice([rng.randrange(0, 300), rng.randrange(1, 10**9), 2**40])
            aggregator.record_request(
                RequestRecord(i, "GET", rng.choice(names), "u", "u", False, elapsed, status,
                              status == 200, False, 0, "" if status else "refused")
            )  # fmt: skip
            aggregator.record_task(TaskRecord(i, 0, rng.randrange(3), "t", elapsed, True, 0))
        delta = to_delta(aggregator.drain(), sequence, 1, False)
        merge_delta(reference, delta)
        totals.merge(delta)
        if sequence % 3 == 0:  # a scrape mid-run, then more deltas
            assert totals.metrics().requests.keys() == reference.requests.keys()
    folded = totals.metrics()
    # 2**40 µs (12.7 days) lies beyond the fold's last bucket: counted there, min/max still exact.
    assert bucket_index(2**40) > WIDTH - 1
    for key, stats in reference.requests.items():
        counts = dict(stats.histogram.counts)
        if bucket_index(2**40) in counts:
            counts[WIDTH - 1] = counts.get(WIDTH - 1, 0) + counts.pop(bucket_index(2**40))
        assert folded.requests[key].histogram.counts == counts, key
        assert folded.requests[key].max_us == stats.max_us == 2**40
        assert (folded.requests[key].count, folded.requests[key].status_codes) == (
            stats.count, stats.status_codes)  # fmt: skip
    assert folded.errors == reference.errors
    assert folded.tasks.keys() == reference.tasks.keys()


def one_row_delta(sequence: int) -> wire.Delta:
    aggregator = Aggregator()
    aggregator.record_request(RequestRecord(0, "GET", "/", "u", "u", False, 1, 200, True, False, 0))
    return to_delta(aggregator.drain(), sequence, 1, False)


@pytest.mark.parametrize(
    ("column", "value", "words", "reference_words"),
    [("bucket_counts", b"\x04\0\0", "not whole 4-byte items", "not whole 4-byte items"),
     ("bucket_counts", column("I", 1, width=8),
      "bucket_counts: a width of 8 bytes \\(want one of 1, 2, 4\\)", "8 bytes wide"),
     ("sum_us", b"\x03\x01\x02\x03", "sum_us: a width of 3 bytes", "3 bytes wide"),
     ("sum_us", b"\x00", "sum_us: a width of 0 bytes", "0 bytes wide"),
     ("bucket_rows", column("I", 2), "columns of other lengths", "columns of other lengths"),
     ("sum_us", b"", "columns of other lengths", "columns of other lengths"),
     ("row_keys", column("I", 1), "requests: row 0: key id 1 was never named", "never named"),
     ("key_ids", column("I", 0, 1), "the keys named do not pair up", "do not pair up"),
     ("status_codes", column("H", 1000), "a status code of 1000", "")],
)  # fmt: skip
def test_a_malformed_delta_is_refused_before_anything_is_folded(
    column: str, value: bytes, words: str, reference_words: str
) -> None:
    totals = Totals()
    bad = one_row_delta(1)
    bad.tasks.CopyFrom(one_row_delta(1).requests)  # a good table folded too, were it allowed
    bad.tasks.ClearField("method"), bad.tasks.ClearField("name")
    bad.tasks.taskset.append(0), bad.tasks.task.append(0)
    setattr(bad.requests, column, value)
    with pytest.raises(ValueError, match=words):
        totals.merge(bad)
    if reference_words:  # the reference decoder has no dense table to overflow
        with pytest.raises(ValueError, match=reference_words):
            from_delta(bad)
    assert totals.metrics().requests == totals.metrics().tasks == {}
    totals.merge(one_row_delta(2))
    assert totals.metrics().requests[("GET", "/")].histogram.counts == {1: 1}


def test_a_malformed_schedule_lag_is_refused_before_anything_is_folded() -> None:
    totals = Totals()
    bad = one_row_delta(1)
    bad.arrivals_dropped = 3
    bad.schedule_lag.CopyFrom(one_row_delta(1).requests)
    bad.schedule_lag.sum_us = b""
    with pytest.raises(ValueError, match="columns of other lengths"):
        totals.merge(bad)
    with pytest.raises(ValueError, match="columns of other lengths"):
        from_delta(bad)
    folded = totals.metrics()
    assert (folded.requests, folded.dropped, folded.lag.timed_count) == ({}, 0, 0)


@pytest.mark.parametrize(
    ("users", "workers", "expected"),
    [(10, 3, [4, 3, 3]), (2, 3, [1, 1, 0]), (9, 3, [3, 3, 3]), (1024, 1, [1024])],
)
def test_users_split_in_worker_order(users: int, workers: int, expected: list[int]) -> None:
    shares = split_users(users, 5.0, workers)
    assert [s.users for s in shares] == expected
    assert [s.first_user for s in shares] == [sum(expected[:i]) for i in range(workers)]
    assert sum(s.hatch_rate for s in shares) == pytest.approx(5.0)


class Shop(TaskSet):
    wait_time = between(1, 2)

    @task(weight=2)
    async def browse(self) -> None: ...

    @task(on_start=True)
    async def login(self) -> None: ...


def test_the_rules_hash_changes_with_the_rules() -> None:
    class Heavier(Shop):
        @task(weight=3)
        async def browse(self) -> None: ...

    Heavier.__name__ = "Shop"
    assert rules_hash([Shop]) == rules_hash([Shop])
    assert rules_hash([Shop]) != rules_hash([Heavier])
    difference = rules_difference(rules_json([Shop]), rules_json([Heavier]))
    assert "weight: manager 2, worker 3" in difference


def test_errors_past_the_cap_fold_as_the_reference_merges_them() -> None:
    totals, reference = Totals(), Metrics()
    for sequence in range(1, 4):  # 3 × 400 distinct errors: the third delta meets the cap
        metrics = Metrics()
        metrics.errors = {f"GET /{sequence}-{i}: status 500": i + 1 for i in range(400)}
        metrics.errors["GET /: refused"] = sequence  # one error every delta repeats
        # one parsed delta for both: which errors make the cut follows the map's order
        delta = wire.Delta.FromString(to_delta(metrics, sequence, 1, False).SerializeToString())
        merge_delta(reference, delta)
        totals.merge(delta)
        assert totals.metrics().errors == reference.errors
    assert len(reference.errors) == MAX_DISTINCT_ERRORS + 1  # the cap, and "other errors"
    assert reference.errors["GET /: refused"] == 6
