"""Changing a running open model: a new arrival rate, a plan of rates, the run time — through
the control API, standalone and over two worker processes — against the counting target. Every
arrival the timetable held is one iteration the target served (none dropped, none twice), and
a gaggle's workers, each taking its turns, start together exactly what one process would."""

from __future__ import annotations

import asyncio
import io
import math
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from gaggle import Attack, RunResult
from gaggle.distributed.codec import segment_from_wire, segment_to_wire
from gaggle.kits.stop import StopSignal
from gaggle.load.drive_arrivals import follow_arrivals
from gaggle.load.schedule import ArrivalSchedule, Ramp
from gaggle.load.timetable import Segment, Timetable
from gaggle.run.runner import Runner
from gaggle.web.control_api import ControlReply
from tests.conftest import Target, free_port, write_test
from tests.load.test_control_api import Api, InProcessGaggle
from tests.load.test_plans import PAGES, Pages, counted


# --- the arithmetic ------------------------------------------------------------------------
def due_by_counting(schedule: ArrivalSchedule, seconds: float) -> int:
    return sum(1 for _, offset in schedule.offsets() if offset < seconds)


@pytest.mark.parametrize(
    "schedule",
    [
        ArrivalSchedule.constant(7, 3),
        ArrivalSchedule(()),  # none at all
        ArrivalSchedule((Ramp(0, 30, 1.5), Ramp(30, 30, 1.0), Ramp(30, 3, 2.0))),
        ArrivalSchedule((Ramp(5, 5, 0.0), Ramp(12.5, 40, 0.7))),
    ],
)
def test_due_before_counts_what_the_schedule_yields(schedule: ArrivalSchedule) -> None:
    for step in range(0, 500):
        seconds = step * 0.011
        assert schedule.due_before(seconds) == due_by_counting(schedule, seconds), seconds
    for number, offset in schedule.offsets():
        assert schedule.offset_of(number) == offset
        assert schedule.due_before(offset) == number


def test_the_rest_of_a_schedule_is_cut_short_or_held_at_its_last_rate() -> None:
    plan = ArrivalSchedule((Ramp(0, 10, 2.0), Ramp(10, 10, 2.0)))
    assert plan.rest(1.0, 2.0).ramps == (Ramp(5, 10, 1.0), Ramp(10, 10, 1.0))
    assert plan.rest(3.0, 5.0).ramps == (Ramp(10, 10, 1.0), Ramp(10, 10, 4.0))  # held at 10/s
    assert plan.rest(9.0, 1.0).ramps == (Ramp(10, 10, 1.0),)  # over already: its last rate
    assert plan.rest(1.0, 0.0).seconds == 0  # no time left: no arrivals


def test_a_replaced_schedule_numbers_on_from_the_old_ones_count() -> None:
    timetable = Timetable.starting(ArrivalSchedule.constant(10, 10), "run time elapsed")
    segment = timetable.replace(1.05, ArrivalSchedule.constant(20, 1), "run time elapsed")
    assert segment.first == 11  # 0, 0.1 … 1.0 s were the old schedule's
    assert timetable.ends == pytest.approx(2.05)
    assert timetable.number_at(math.inf) == 11 + 20
    # what a manager sends its workers
    assert segment_from_wire(segment_to_wire(segment)) == segment


class Recorded:
    """An arrival pool that only notes what it was asked to start."""

    def __init__(self) -> None:
        self.numbers: list[int] = []

    def arrive(self, number: int, due: float) -> bool:
        self.numbers.append(number)
        return True


def test_followers_taking_turns_switch_together_even_one_that_hears_late() -> None:
    """One follower alone, and three taking turns (one hears of the change 80 ms after it was
    due), follow the same timetable: the three start exactly the one's numbers, none twice."""

    async def follow() -> tuple[list[int], list[list[int]], list[str]]:
        first = ArrivalSchedule.constant(100, 0.6)
        tables = [Timetable.starting(first, "run time elapsed") for _ in range(4)]
        pools = [Recorded() for _ in range(4)]
        stop, origin = StopSignal(), time.perf_counter()
        turns = [(0, 1), (0, 3), (1, 3), (2, 3)]
        followers = [
            asyncio.ensure_future(follow_arrivals(t, p, stop, origin, turn))
            for t, p, turn in zip(tables, pools, turns, strict=True)
        ]
        await asyncio.sleep(0.2)
        change = tables[0].replace(0.3, ArrivalSchedule.constant(250, 0.4), "the plan is over")
        for table in tables[1:3]:
            table.add(change)
        await asyncio.sleep(0.18)  # 80 ms past the instant the change was due
        tables[3].add(change)
        ends = await asyncio.wait_for(asyncio.gather(*followers), timeout=5)
        return pools[0].numbers, [p.numbers for p in pools[1:]], ends

    alone, turns, ends = asyncio.run(follow())
    expected = 30 + 100  # 0, 0.01 … 0.29 s at 100/s, then 0.4 s at 250/s
    assert alone == list(range(expected))
    together = sorted(number for numbers in turns for number in numbers)
    assert together == alone  # exactly the same arrivals, none twice
    assert ends == ["the plan is over"] * 4  # the last schedule's end is the run's


def test_a_late_worker_joins_the_timetable_where_it_stands() -> None:
    async def follow() -> list[int]:
        table = Timetable.starting(ArrivalSchedule.constant(100, 2.0), "run time elapsed")
        pool, stop = Recorded(), StopSignal()
        # it joins 1.8 s into the run: nothing due before that is its to start
        await follow_arrivals(table, pool, stop, time.perf_counter() - 1.8, (0, 1), joined=1.8)
        return pool.numbers

    assert asyncio.run(follow()) == list(range(180, 200))


# --- standalone, through the control API ---------------------------------------------------
def arrivals_held(timetable: Timetable) -> int:
    """Arrivals the whole timetable held (its last schedule is finite)."""
    assert not math.isinf(timetable.ends)
    return timetable.number_at(timetable.ends)


def run_open(target: Target, steps: Any, **options: Any) -> tuple[RunResult, Runner]:
    port = free_port()
    plan = Attack(Pages).plan(
        {"host": target.url, "metrics_bind": f"127.0.0.1:{port}", **options},
        console=Console(file=io.StringIO(), width=140),
    )
    runner = Runner(plan)

    async def both() -> RunResult:
        run = asyncio.ensure_future(runner.run())
        try:
            await asyncio.wait_for(steps(Api(port)), timeout=30)
        except BaseException:  # a failed step: end the run instead of leaving it going
            runner.stop("a step failed")
            await asyncio.wait_for(run, timeout=30)
            raise
        return await asyncio.wait_for(run, timeout=30)

    return asyncio.run(both()), runner


def test_a_new_rate_then_a_run_time_change_a_running_open_model(target: Target) -> None:
    seen: dict[str, Any] = {}

    async def steps(api: Api) -> None:
        await api.until("arrivals at 20/s", lambda s: s["arrival_rate"] == 20)
        await asyncio.sleep(0.5)
        seen["rate"] = await api.post("/api/arrival-rate", {"arrival_rate": 60})
        await asyncio.sleep(1.0)
        seen["run_time"] = await api.post("/api/run-time", {"remaining": 0.5})
        _, seen["metrics"] = await api.call("GET", "/metrics")

    result, runner = run_open(target, steps, arrival_rate=20, run_time=30)
    assert result.stopped_by == "run time elapsed"
    assert seen["rate"]["arrival_rate"] == 60
    assert seen["rate"]["load"] == "arrival_rate"
    assert seen["run_time"]["run_time"]["remaining"] == pytest.approx(0.5, abs=0.05)
    changes = [c["change"] for c in seen["run_time"]["changes"]]
    assert changes[0] == "arrival rate 20/s → 60/s"
    assert changes[1].startswith("run time: 0.5 s remaining (was 2")  # 28 s or so of 30
    assert 'gaggle_control_changes_total{what="arrival_rate"} 1.0' in seen["metrics"]
    served = target.counts()
    assert counted(result) == served
    assert result.all_metrics().dropped == 0
    assert runner.open_model is not None
    held = arrivals_held(runner.open_model.timetable)
    assert served["GET / 200"] == held  # each arrival one iteration: / then /about/
    assert 20 * 2.1 + 30 < held < 60 * 2.5  # about 100 in 2 s: the new rate took over


def test_a_plan_of_rates_replaces_the_rate_and_ends_the_run(target: Target) -> None:
    seen: dict[str, Any] = {}

    async def steps(api: Api) -> None:
        await api.until("arrivals at 20/s", lambda s: s["arrival_rate"] == 20)
        for path, body in [
            ("/api/users", {"users": 5}),  # an open model's users are its pool
            ("/api/plan", {"plan": "5,1s"}),  # a plan of users
        ]:
            status, answer = await api.call("POST", path, body)
            assert status == 409, answer
            seen.setdefault("refused", []).append(answer["allowed"])
        seen["plan"] = await api.post("/api/plan", {"plan": "40/s,0.5s;0/s,0.5s"})
        seen["stage"] = (await api.until("a stage", lambda s: s["stage"] is not None))["stage"]

    result, runner = run_open(target, steps, arrival_rate=20, run_time=30)
    assert result.stopped_by == "the test plan is over"
    assert "set arrival_rate, a plan of rates" in seen["refused"][0]
    assert "give a plan of rates" in seen["refused"][1]
    assert seen["plan"]["load"] == "plan"
    assert seen["stage"] == "stage 1 (40/s,0.5): 40/s in 0.5 s"
    assert seen["plan"]["plan"] == "40/s,0.5;0/s,0.5"
    assert seen["plan"]["run_time"]["remaining"] == pytest.approx(1.0, abs=0.05)
    served = target.counts()
    assert counted(result) == served
    assert runner.open_model is not None
    assert served["GET / 200"] == arrivals_held(runner.open_model.timetable)
    assert result.all_metrics().dropped == 0


def test_a_run_time_change_keeps_a_rate_plans_stages_marked(target: Target) -> None:
    async def steps(api: Api) -> None:
        await api.until("stage 1", lambda s: s["stage"] is not None)
        await api.post("/api/run-time", {"remaining": 1.2})  # the plan's last stage, cut short

    result, runner = run_open(target, steps, test_plan="10/s,0.4s;10/s,0.4s;0/s,3s")
    assert result.stopped_by == "run time elapsed"
    assert [label.split(" (")[0] for _, label in runner.stage_marks] == [
        "stage 1",
        "stage 2",
        "stage 3",
    ]


def test_a_closed_model_takes_no_plan_of_rates(target: Target) -> None:
    async def steps(api: Api) -> None:
        await api.until("2 users running", lambda s: s["users"]["running"] == 2)
        status, answer = await api.call("POST", "/api/plan", {"plan": "10/s,1s"})
        assert status == 409
        assert "the run is a closed model: give a plan of users" in answer["allowed"]
        await api.post("/api/stop", {})

    result, _ = run_open(target, steps, users=2, hatch_rate=100)
    assert counted(result) == target.counts()


# --- a gaggle: two worker processes ----------------------------------------------------------
def test_two_workers_follow_a_new_rate_together_and_count_exactly(
    target: Target, tmp_path: Path
) -> None:
    gaggle = InProcessGaggle(write_test(tmp_path, PAGES), target, arrival_rate=30, run_time=60)
    api = gaggle.api

    async def steps() -> list[ControlReply]:
        await api.until("arrivals at 30/s", lambda s: s["arrival_rate"] == 30, 20)
        await asyncio.sleep(0.5)
        faster = await api.post("/api/arrival-rate", {"arrival_rate": 90})
        await asyncio.sleep(1.0)
        return [faster, await api.post("/api/run-time", {"remaining": 0.8})]

    result, exits, answers = gaggle.run(steps)
    assert [code for code, _ in exits] == [0, 0], exits
    assert result.stopped_by == "run time elapsed"
    assert answers[0]["arrival_rate"] == 30  # the change is due half a second after it is made
    served = target.counts()
    assert counted(result) == served  # the merged totals are exactly what the target served
    assert result.all_metrics().dropped == 0
    assert gaggle.manager.open_model is not None
    timetable = gaggle.manager.open_model.timetable
    assert [s.schedule.ramps[0].end for s in timetable.segments] == [30, 90, 90]
    assert served["GET / 200"] == arrivals_held(timetable)  # the workers' turns, all of them


def test_a_segment_survives_the_wire() -> None:
    segment = Segment(2.5, 41, ArrivalSchedule((Ramp(3, 9, 1.5), Ramp(9, 9, math.inf))))
    assert segment_from_wire(segment_to_wire(segment)) == segment
