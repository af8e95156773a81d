"""The open model in Gaggle mode: a manager and two worker processes on 127.0.0.1 follow one
arrival schedule, each worker its every other arrival; the merged totals — requests, drops and
lag — equal what the target served and what the schedule held."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from gaggle.distributed.codec import to_delta
from gaggle.distributed.merged_tally import Totals
from gaggle.distributed.shares import split_arrivals
from gaggle.metrics.aggregate import Metrics
from gaggle.options.config import build_config
from tests.conftest import (
    Target,
    finish,
    free_port,
    kill_leftovers,
    spawn_gaggle,
    write_test,
)
from tests.gaggle_mode.test_failures import kill_one_and_replace
from tests.gaggle_mode.test_load_plans import gaggle_run, users_in
from tests.gaggle_mode.test_mode import TEST
from tests.load.test_plans import counted
from tests.support.reference_codec import from_delta, merge_delta

SLOW = """
from gaggle import TaskSet, task

class Slow(TaskSet):
    @task(on_start=True)
    async def hello(self) -> None:
        await self.get("/start")

    @task
    async def slow(self) -> None:
        await self.get("/slow?ms=250", name="/slow")
"""


def test_the_pool_is_split_like_users_and_the_arrivals_by_turns() -> None:
    shares = split_arrivals(5, 3)
    assert [(s.users, s.first_user) for s in shares] == [(2, 0), (2, 2), (1, 4)]
    assert [(s.arrival_first, s.arrival_stride) for s in shares] == [(0, 3), (1, 3), (2, 3)]
    # a worker without users takes no arrivals; the others share them
    assert [(s.users, s.arrival_stride) for s in split_arrivals(1, 2)] == [(1, 1), (0, 0)]


def test_drops_and_lag_cross_the_wire_exactly() -> None:
    metrics = Metrics()
    metrics.dropped = 7
    for lag_us in (120, 5_000, 1_000_000):
        metrics.lag.record(lag_us, True)
    delta = to_delta(metrics, 1, 0, False)
    assert from_delta(delta) == metrics
    totals = Totals()
    totals.merge(delta)
    totals.merge(to_delta(metrics, 2, 0, False))
    folded = totals.metrics()
    assert (folded.dropped, folded.lag.timed_count, folded.lag.max_us) == (14, 6, 1_000_000)


def test_the_managers_fold_keeps_drops_and_lag_as_the_reference_decodes_them() -> None:
    totals, reference = Totals(), Metrics()
    for sequence in range(1, 4):
        metrics = Metrics()
        metrics.dropped = sequence
        # 2**40 µs lies past the fold's dense buckets: the lag row keeps its own bucket
        for lag_us in (sequence, 5_000 * sequence, 2**40):
            metrics.lag.record(lag_us, True)
        delta = to_delta(metrics, sequence, 0, False)
        merge_delta(reference, delta)
        totals.merge(delta)
    folded = totals.metrics()
    assert folded.dropped == reference.dropped == 6
    assert folded.lag == reference.lag
    assert folded.lag.timed_count == 9
    assert (folded.lag.min_us, folded.lag.max_us) == (1, 2**40)


def test_a_rate_plan_over_two_workers_counts_exactly(target: Target, tmp_path: Path) -> None:
    plan = "0/s,0;12/s,1s;12/s,1s"  # a ramp to 12/s (6 arrivals), then 12 at 12/s
    scheduled = build_config({"test_plan": plan}).arrival_schedule().count()
    assert scheduled == 18
    # 4 users of 250 ms iterations serve about 16 arrivals a second: a few may be dropped
    result, logs = gaggle_run(target, tmp_path, SLOW, 2, test_plan=plan, max_users=4)
    metrics, served = result.all_metrics(), target.counts()
    assert result.stopped_by == "the test plan is over"
    assert metrics.scheduled == scheduled  # every arrival: started or dropped, none lost
    assert served["GET /slow 200"] == metrics.lag.timed_count == scheduled - metrics.dropped
    assert counted(result) == served  # the merged totals are what the target served
    assert served["GET /start 404"] <= 4  # the pools grew to 2 users each at most
    assert sorted(len(users_in(log)) >= 1 for log in logs) == [True, True]


def test_drops_merge_exactly_over_two_workers(target: Target, tmp_path: Path) -> None:
    result, _ = gaggle_run(target, tmp_path, SLOW, 2, arrival_rate=20, run_time=1, max_users=2)
    metrics, served = result.all_metrics(), target.counts()
    assert result.stopped_by == "run time elapsed"
    assert metrics.scheduled == 20
    assert metrics.dropped >= 5  # one user per worker serves 4 of its 10 arrivals a second
    assert served["GET /slow 200"] == metrics.lag.timed_count == 20 - metrics.dropped
    assert counted(result) == served


def test_a_worker_joining_mid_run_takes_the_lost_ones_turns_where_the_schedule_stands(
    target: Target, tmp_path: Path
) -> None:
    """20/s for 6 s are 120 arrivals over two workers; one is killed at about 1 s and a third
    joins in its place: it takes the lost worker's turns from the instant it starts, so the
    gaggle never starts more than the schedule held (a newcomer starting the schedule afresh
    would run 60 of its own on top)."""
    test, port, metrics = write_test(tmp_path, TEST), free_port(), free_port()
    manager = spawn_gaggle(
        "run", test, "--manager", "--expect-workers", "2", "--manager-bind-host", "127.0.0.1",
        "--manager-bind-port", str(port), "--host", target.url, "--arrival-rate", "20",
        "-t", "6", "--metrics-bind", f"127.0.0.1:{metrics}",
    )  # fmt: skip
    logs = [tmp_path / f"requests-{name}.json" for name in "abc"]
    workers: list[subprocess.Popen[str]] = []
    try:
        kill_one_and_replace(test, port, metrics, target, logs, workers)  # its turns go unserved
        code, err = finish(manager)
        exits = [finish(workers[0])[0], finish(workers[2])[0]]
    finally:
        kill_leftovers(manager, *workers)
    assert code == 0, err
    assert exits == [0, 0]
    assert "joined mid-run" in err
    served = target.counts()["GET / 200"]
    survivor, newcomer = (iterations_in(log) for log in (logs[0], logs[2]))
    assert survivor == 60  # its every other arrival of the whole schedule
    assert 0 < newcomer < 60 - 10  # the lost one had served about 10 before it was killed
    assert served <= 120  # no arrival started twice, none beyond the schedule


def iterations_in(log: Path) -> int:
    return sum(1 for line in log.read_text().splitlines() if json.loads(line)["name"] == "/")
