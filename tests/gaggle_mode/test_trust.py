"""What a manager does not take on trust: a port another manager holds (review D8), and a delta
no real worker could send (D18) — negative or absurd counts, counts that do not add up, columns
that do not fit. The deltas are made by the workers' own encoder (``to_delta``) and then bent."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from gaggle.distributed.codec import LAG_KEY, KeyIds, to_delta
from gaggle.distributed.delta_checks import MAX_BUCKET, DeltaLedger
from gaggle.metrics import NO_MIN, Aggregator, Metrics, RequestRecord, Stats, TaskRecord
from gaggle.wire import gaggle_pb2 as wire
from tests.conftest import Target, finish, free_port, kill_leftovers, spawn_gaggle, write_test
from tests.gaggle_mode.test_joins import LinkedWorker, new_manager, serving, within
from tests.gaggle_mode.test_mode import TEST
from tests.gaggle_mode.test_security import one_worker_manager, wait_listening
from tests.support.reference_codec import column


# --- D8: a manager's port is its own ------------------------------------------------------------
def test_d8_a_second_manager_on_a_taken_port_exits_2_and_the_first_serves_on(
    target: Target, tmp_path: Path
) -> None:
    test, port = write_test(tmp_path, TEST), free_port()
    first = one_worker_manager(test, target, port)
    second = joining = None
    try:
        wait_listening(port, first)
        second = one_worker_manager(test, target, port)
        code, err = finish(second, 60)  # before: it listened too (SO_REUSEPORT), for ever
        joining = spawn_gaggle("run", test, "--worker", "--manager-port", str(port))
        joined, joined_err = finish(joining, 60)
        first_code, first_err = finish(first, 60)
    finally:
        kill_leftovers(first, second, joining)
    assert code == 2, err
    assert f"--manager-bind-port: {port} is not allowed; cannot listen on 127.0.0.1:{port}" in err
    assert "the port is taken" in err
    assert "manager listening" not in err
    assert joined == 0, joined_err
    assert first_code == 0, first_err
    assert target.counts()["GET / 200"] > 0


# --- D18: deltas no worker could send -----------------------------------------------------------
def record(success: bool = True, elapsed_us: int = 1000, status: int = 200) -> RequestRecord:
    return RequestRecord(0, "GET", "/", "u", "u", False, elapsed_us, status, success, False, 0)


def one_request(sequence: int = 1, final: bool = False) -> wire.Delta:
    """A delta of one GET / (200, 1 ms), as a worker encodes it."""
    aggregator = Aggregator()
    aggregator.record_request(record())
    return to_delta(aggregator.drain(), sequence, 1, final)


def flipped(times: int) -> wire.Delta:
    """A delta of ``times`` set_failure flips of requests recorded in no earlier delta."""
    aggregator = Aggregator()
    for _ in range(times):
        aggregator.flip_request(record(success=False))
    return to_delta(aggregator.drain(), 1, 1, False)


def bent(**columns: bytes) -> wire.Delta:
    delta = one_request()
    for name, value in columns.items():
        setattr(delta.requests, name, value)
    return delta


def twice() -> wire.Delta:
    """One GET / row sent twice in one table (a worker sends one row per name)."""
    aggregator = Aggregator()
    aggregator.record_request(record())
    aggregator.record_request(record()._replace(name="/b"))
    delta = to_delta(aggregator.drain(), 1, 1, False)
    delta.requests.row_keys = column("I", 0, 0)  # both rows GET /: key 0
    return delta


def with_fields(**fields: object) -> wire.Delta:
    delta = one_request()
    for name, value in fields.items():
        setattr(delta, name, value)
    return delta


def with_error(count: int) -> wire.Delta:
    delta = one_request()
    delta.errors["GET /: status 500"] = count
    return delta


def with_task(success: int, fail: int) -> wire.Delta:
    aggregator = Aggregator()
    aggregator.record_task(TaskRecord(0, 0, 1, "t", 500, True, 0))
    delta = to_delta(aggregator.drain(), 1, 1, False)
    delta.tasks.success_count, delta.tasks.fail_count = column("q", success), column("q", fail)
    return delta


def failed_start() -> wire.Delta:
    metrics = Metrics()
    metrics.lag.record(30, True)
    delta = to_delta(metrics, 1, 1, False)
    delta.schedule_lag.success_count = column("q", 0)
    delta.schedule_lag.fail_count = column("q", 1)
    return delta


IMPOSSIBLE = {  # name → (delta, words its reason must hold)
    "negative": (bent(success_count=column("q", -5)),
                 "request GET /: -5 requests (success_count -5 + fail_count 0) < 0"),
    "flip past the counted": (flipped(5),
                              "success_count -5 takes back more than the 0 this worker counted"),
    "more failures than timings": (bent(fail_count=column("q", 3)),
                                   "4 requests (success_count 1 + fail_count 3) but 1 timings"),
    "histogram over the count": (bent(bucket_counts=column("I", 7)), "but 7 timings"),
    "statuses over the count": (bent(status_counts=column("I", 2)), "but 2 statuses"),
    "bucket past the last": (bent(bucket_indexes=column("H", 9000)),
                             f"request GET /: bucket_index 9000 (want ≤ {MAX_BUCKET})"),
    "status of four digits": (bent(status_codes=column("H", 1000)),
                              "status_code 1000 (want ≤ 999)"),
    "absurd count": (bent(success_count=column("q", 10**13)), "success_count 10000000000000"),
    "sum beyond max": (bent(sum_us=column("Q", 5000)),
                       "min_us 1000, max_us 1000, sum_us 5000 over 1 timings"),
    "min above max": (bent(min_us=column("Q", 2000)), "min_us 2000, max_us 1000"),
    "untimed with times": (bent(bucket_rows=column("I", 0), bucket_indexes=b"", bucket_counts=b"",
                                status_rows=column("I", 0), status_codes=b"", status_counts=b"",
                                success_count=column("q", 0)), "no timings but min_us 1000"),
    "rows of other lengths": (bent(bucket_rows=column("I", 2)), "malformed: requests: a delta "
                              "table with 1 rows has columns of other lengths"),
    "bytes not whole items": (bent(sum_us=b"\x08\x01\x02\x03"),
                              "malformed: requests: sum_us: 3 bytes are not whole 8-byte items"),
    "a width past the column's": (bent(bucket_indexes=column("H", 5, width=4)),
                                  "malformed: requests: bucket_indexes: a width of 4 bytes "
                                  "(want one of 1, 2)"),
    "keys of other lengths": (bent(), "malformed: requests: the keys named do not pair up: "
                              "{'method': 2, 'name': 1, 'key_ids': 1}"),
    "a key never named": (bent(row_keys=column("I", 3)),
                          "malformed: requests: row 0: key id 3 was never named on its stream"),
    "a row twice": (twice(), "requests: a row appears twice"),
    "absurd errors": (with_error(10**13), "errors['GET /: status 500'] 10000000000000"),
    "absurd drops": (with_fields(arrivals_dropped=10**13), "arrivals_dropped 10000000000000"),
    "absurd users": (with_fields(users_running=2_000_000), "users_running 2000000"),
    "a gap": (with_fields(sequence=3), "sequence 3 after 0 (deltas 1..2 missing)"),
    "a task's negative failures": (with_task(2, -1), "task 0.1: fail_count -1 (want 0.."),
    "a failed start": (failed_start(), "schedule lag: fail_count 1 (a start never fails)"),
}  # fmt: skip
IMPOSSIBLE["keys of other lengths"][0].requests.method.append("POST")


@pytest.mark.parametrize("case", IMPOSSIBLE)
def test_d18_an_impossible_delta_is_refused_with_its_reason(case: str) -> None:
    delta, words = IMPOSSIBLE[case]
    ledger = DeltaLedger()
    why = ledger.check(wire.Delta.FromString(delta.SerializeToString()), started=True)
    assert words in why, why
    assert ledger.check(one_request(1), started=True) == ""  # the refused one left no trace


def test_d18_deltas_out_of_order_before_the_start_or_after_the_final_are_refused() -> None:
    ledger = DeltaLedger()
    assert ledger.check(one_request(1), started=False) == "a delta before its Start"
    assert ledger.check(one_request(1, final=True), started=True) == ""
    assert ledger.check(one_request(2), started=True) == "sequence 2 after its final delta"


def test_d18_every_delta_a_real_worker_sends_passes() -> None:
    """Flips that take back requests of earlier deltas, untimed rows, status 0, times from 0 µs
    to 12 days, tasks, an open model's lag and drops, errors, counts over 2^32 in one bucket
    (several entries), empty and final deltas: nothing a worker encodes is refused."""
    ledger, earlier, keys = DeltaLedger(), list[RequestRecord](), KeyIds()
    for sequence in range(1, 8):
        aggregator = Aggregator()
        for flip in earlier:  # the verdicts of the previous delta's requests change now
            aggregator.flip_request(flip._replace(success=not flip.success, update=True))
        earlier = []
        for i in range(300):
            status = (200, 404, 0)[i % 3]
            elapsed = (0, 7, 1_000, 2**40)[i % 4]
            sent = RequestRecord(i, "GET", f"/{i % 7}", "u", "u", False, elapsed, status,
                                 status == 200, False, 0, "" if status else "refused")  # fmt: skip
            aggregator.record_request(sent)
            if i % 5 == 0:
                earlier.append(sent)
            aggregator.record_task(TaskRecord(i, i % 2, i % 3, "t", elapsed, i % 4 > 0, 0))
            aggregator.record_lag(elapsed)
        aggregator.record_dropped()
        aggregator.record_error("on_start: ValueError")
        delta = to_delta(aggregator.drain(), sequence, 5, False, keys)
        assert ledger.check(wire.Delta.FromString(delta.SerializeToString()), True) == ""
    huge = Metrics()
    stats = huge.requests[("GET", "/big")] = Stats()
    stats.success_count = stats.histogram.total = 2**33
    stats.histogram.counts = {5: 2**33}
    stats.status_codes = {200: 2**33}
    stats.sum_us, stats.min_us, stats.max_us = 5 * 2**33, 5, 5
    assert huge.requests[("GET", "/big")].min_us != NO_MIN
    assert ledger.check(to_delta(huge, 8, 5, False, keys), True) == ""
    assert ledger.check(to_delta(Metrics(), 9, 0, True, keys), True) == ""
    assert LAG_KEY == ("", "lag")


@pytest.mark.parametrize(
    ("case", "bad", "words"),
    [("negative", IMPOSSIBLE["negative"][0], IMPOSSIBLE["negative"][1]),
     ("malformed", IMPOSSIBLE["rows of other lengths"][0], "malformed: requests: a delta table"),
     ("unknown key", IMPOSSIBLE["a key never named"][0],
      "malformed: requests: row 0: key id 3 was never named on its stream")],
)  # fmt: skip
def test_d18_a_worker_sending_an_impossible_delta_is_dropped_and_none_of_it_counts(
    case: str, bad: wire.Delta, words: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A peer with the worker's real line sends one good delta (1 request), then a bad one: the
    manager names the worker and the reason, ends its stream, and its totals hold the 1."""

    async def gaggle() -> tuple[object, LinkedWorker, bool]:
        manager = new_manager(workers=1, users=2)
        run, port = await serving(manager)
        liar = LinkedWorker(port, "liar")
        try:
            await asyncio.to_thread(liar.join)
            assert await asyncio.to_thread(liar.until, "start") is not None
            good = one_request(1)
            good.hatched = True
            liar.send(good)
            lie = wire.Delta.FromString(bad.SerializeToString())
            lie.sequence = 2
            for named in ("method", "name", "key_ids"):  # GET / is key 0: the good one named it
                lie.requests.ClearField(named)
            liar.send(lie)
            ended = await asyncio.to_thread(liar.until, "stream end") is None
            return await within(run, "the run's end"), liar, ended
        finally:
            liar.close()

    with caplog.at_level(logging.WARNING, logger="gaggle"):
        result, liar, ended = asyncio.run(gaggle())
    assert ended, liar.heard  # the manager closed the stream: a real worker would stop
    assert f"lost worker 1 (it sent an impossible delta: {words}" in caplog.text, caplog.text
    assert "silent" not in caplog.text
    totals = result.all_metrics()  # type: ignore[attr-defined]
    assert totals.requests[("GET", "/")].count == 1
    assert totals.requests[("GET", "/")].success_count == 1
