"""The open model on one event loop: --arrival-rate and plans of rates against real servers on
127.0.0.1. Every arrival that came due is either started or dropped — counted exactly against
the schedule and the target's own counter — and latency counts from the intended start, so a
stalling server shows its stall where a closed run's percentiles hide it."""

from __future__ import annotations

import asyncio
import io
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from gaggle import Attack, ConfigError, RunResult, TaskSet, pacing, task
from gaggle.load.schedule import ArrivalSchedule
from gaggle.metrics.source import Source
from gaggle.metrics.thresholds import ThresholdError, parse_threshold
from gaggle.options.config import build_config
from gaggle.web.prometheus import MetricsPage
from tests.conftest import ROOT, Target, run_gaggle, write_test


class Once(TaskSet):
    """One request per iteration, and one per pooled user when it joins."""

    @task(on_start=True)
    async def hello(self) -> None:
        await self.get("/start")

    @task
    async def index(self) -> None:
        await self.get("/")


class Slow(TaskSet):
    @task
    async def slow(self) -> None:
        await self.get("/slow?ms=300", name="/slow")


def quiet() -> Console:
    return Console(file=io.StringIO(), width=160, highlight=False)


def run(attack: Attack, console: Console | None = None, **options: Any) -> RunResult:
    return asyncio.run(attack.run_async(console=console or quiet(), **options))


# --- the schedule -------------------------------------------------------------------------------
def test_a_constant_rate_schedules_its_arrivals_on_a_grid() -> None:
    schedule = ArrivalSchedule.constant(4, 2)
    assert [offset for _, offset in schedule.offsets()] == [i / 4 for i in range(8)]
    assert schedule.count() == 8


def test_a_plan_of_rates_ramps_linearly_like_k6() -> None:
    config = build_config({"test_plan": "0/s,0;10/s,1s;10/s,1s;0/s,1s"})
    assert config.test_plan == "0/s,0;10/s,1;10/s,1;0/s,1"
    schedule = config.arrival_schedule()
    # 0→10/s over 1 s holds 5 arrivals, 10/s for 1 s 10 more, 10→0 over 1 s 5 more
    assert schedule.count() == 20
    offsets = [offset for _, offset in schedule.offsets()]
    assert offsets[:3] == pytest.approx([0.0, (2 * 1 / 10) ** 0.5, (2 * 2 / 10) ** 0.5])
    assert offsets == sorted(offsets)
    assert offsets[-1] < 3
    assert schedule.rate_at(0.5) == pytest.approx(5)
    assert schedule.rate_at(1.5) == pytest.approx(10)
    assert schedule.rate_at(2.5) == pytest.approx(5)


def test_workers_taking_every_nth_arrival_start_exactly_the_whole_schedule() -> None:
    schedule = ArrivalSchedule.of_plan(build_config({"test_plan": "7/s,1.3s;3/s,2s"}).plan_stages)
    whole = list(schedule.offsets())
    shared = sorted(pair for first in range(3) for pair in schedule.offsets(first, 3))
    assert shared == whole


# --- options ------------------------------------------------------------------------------------
def test_an_open_model_names_the_pool_as_its_users() -> None:
    config = build_config({"arrival_rate": "2.5", "run_time": "10s", "max_users": "7"})
    assert (config.open_model, config.arrival_rate, config.users) == (True, 2.5, 7)
    assert build_config({"arrival_rate": 1}).max_users == 1000  # the documented default
    # a later layer's -u wins over a program's default rate, as with plans
    assert not build_config({"arrival_rate": 5}, {"users": 3}).open_model


INDEX = """
from gaggle import TaskSet, task

class Index(TaskSet):
    @task
    async def index(self) -> None:
        await self.get("/")
"""

BAD_INPUT = [
    (["--arrival-rate", "0"], ["--arrival-rate", "'0'", "number > 0"]),
    (["--arrival-rate", "-3"], ["--arrival-rate", "'-3'", "number > 0"]),
    (["--arrival-rate", "5", "--max-users", "0"], ["--max-users", "'0'", "≥ 1"]),
    (["--test-plan", "10/s,1m;5,1m"], ["stage 2", "'5,1m'", "all USERS,DURATION"]),
    (["--arrival-rate", "5", "-u", "3"], ["--arrival-rate", "--users", "do not go together"]),
    (["--test-plan", "5/s,1m;-2/s,1m"], ["stage 2", "'-2/s,1m'"]),
]


@pytest.mark.parametrize(("args", "words"), BAD_INPUT)
def test_bad_open_model_input_exits_2_with_one_line(
    tmp_path: Path, args: list[str], words: list[str]
) -> None:
    test = write_test(tmp_path, INDEX)
    result = run_gaggle("run", test, "-H", "http://127.0.0.1:9", *args, timeout=30)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_max_users_without_an_open_model_is_refused() -> None:
    with pytest.raises(ConfigError, match="--max-users bounds an open model"):
        build_config({"users": 3, "max_users": 5})


def test_schedule_thresholds_read_the_lag_and_the_drops() -> None:
    assert parse_threshold("lagP99 < 50").quantile == 0.99
    assert parse_threshold("dropped < 1").on_schedule
    with pytest.raises(ThresholdError, match="name no request"):
        parse_threshold("lagP99(GET /) < 50")


# --- runs against the counting target -----------------------------------------------------------
def test_four_arrivals_a_second_for_two_seconds_are_eight_iterations(
    target: Target, tmp_path: Path
) -> None:
    console, report = quiet(), tmp_path / "report.html"
    result = run(
        Attack(Once),
        console,
        host=target.url,
        arrival_rate=4,
        run_time=2,
        report_file=str(report),
        thresholds=("lagP99 < 1000", "dropped < 1"),  # generous: a busy machine lags
    )
    metrics, served = result.all_metrics(), target.counts()
    assert metrics.scheduled == 8  # what the schedule holds: 0, 0.25 … 1.75 s
    assert metrics.lag.timed_count + metrics.dropped == 8
    assert served["GET / 200"] == metrics.lag.timed_count == 8  # nothing dropped at 4/s
    assert served["GET /start 404"] == result.users  # one on_start per pooled user
    assert result.stopped_by == "run time elapsed"
    assert result.passed, result.verdicts
    assert [verdict.observed for verdict in result.verdicts][1] == 0.0
    printed = console.file.getvalue()  # type: ignore[attr-defined]
    assert "SCHEDULE" in printed
    assert "Latency: from the intended start" in printed
    page = report.read_text()
    assert "<h2>Schedule</h2>" in page
    assert "<th>Arrival rate</th><td>4.000 iterations started/s</td>" in page


def test_arrivals_without_a_free_user_are_dropped_and_counted(target: Target) -> None:
    # 2 users of 300 ms iterations serve about 6.7 arrivals a second: of 20/s most are dropped
    result = run(
        Attack(Slow), host=target.url, arrival_rate=20, run_time=1, max_users=2,
        thresholds=("dropped < 1",),
    )  # fmt: skip
    metrics, served = result.all_metrics(), target.counts()
    assert metrics.scheduled == 20
    assert metrics.dropped > 5
    assert served["GET /slow 200"] == metrics.lag.timed_count == 20 - metrics.dropped
    assert result.users == 2
    assert not result.passed  # the threshold on drops failed
    page = metrics_page(result)
    assert f"gaggle_arrivals_dropped_total {float(metrics.dropped)}" in page
    assert "gaggle_schedule_lag_seconds_count 20.0" not in page  # started ones only
    assert f"gaggle_schedule_lag_seconds_count {float(20 - metrics.dropped)}" in page
    assert "gaggle_arrival_rate 20.0" in page  # what the source says the schedule asks for


def test_an_arrival_whose_user_cannot_start_is_dropped_not_lost(target: Target) -> None:
    class Broken(TaskSet):
        def __init__(self) -> None:
            raise RuntimeError("no fixture")

        @task
        async def index(self) -> None:
            await self.get("/")

    result = run(Attack(Broken), host=target.url, arrival_rate=4, run_time=1)
    metrics = result.all_metrics()
    assert (metrics.scheduled, metrics.dropped) == (4, 4)
    assert any("Broken.__init__: RuntimeError: no fixture" in error for error in metrics.errors)
    assert "GET / 200" not in target.counts()


def test_a_new_user_stopped_in_its_on_start_still_runs_its_arrival(target: Target) -> None:
    """The run ends while the arrival's new user is in its on_start: the arrival it took still
    runs whole, so started + dropped stays what the schedule held."""

    class SlowStart(TaskSet):
        @task(on_start=True)
        async def warm(self) -> None:
            await self.get("/slow?ms=400", name="/slow")

        @task
        async def index(self) -> None:
            await self.get("/")

    result = run(Attack(SlowStart), host=target.url, arrival_rate=5, run_time=0.5)
    metrics, served = result.all_metrics(), target.counts()
    assert metrics.scheduled == 3  # 0, 0.2, 0.4 s: each a new user (the first still warming)
    assert served["GET / 200"] == metrics.lag.timed_count == 3
    assert served["GET /slow 200"] == result.users == 3


def metrics_page(result: RunResult) -> str:
    source = Source(metrics=result.all_metrics, users=lambda: 0, arrival_rate=lambda: 20.0)
    return MetricsPage(source).render().decode()


def test_a_paced_task_is_timed_from_its_slot(target: Target) -> None:
    """pacing(0.1) with 300 ms tasks: each task begins 200 ms after its slot, and its request's
    time counts from the slot (500 ms) unless --latency service asks for service time."""

    class Paced(TaskSet):
        wait_time = pacing(0.1)

        @task
        async def slow(self) -> None:
            await self.get("/slow?ms=300", name="/slow")

    timed = {}
    for latency in ("intended", "service"):
        result = run(Attack(Paced), host=target.url, users=1, run_time=1.2, latency=latency)
        stats = result.all_metrics().requests[("GET", "/slow")]
        timed[latency] = stats.percentile_us(0.5) / 1000
        assert result.all_metrics().lag.percentile_us(0.5) / 1000 >= 150
    assert timed["intended"] >= 450
    assert 290 <= timed["service"] < 400


# --- a stall: the open model shows it, a closed run's percentiles hide it -----------------------
STALLING_SERVER = """
import asyncio, sys, time
from aiohttp import web

PERIOD, STALL = 2.0, 1.0  # every 2 s the server answers nothing for 1 s
began = time.monotonic()

async def page(request):
    phase = (time.monotonic() - began) % PERIOD
    if phase < STALL:
        await asyncio.sleep(STALL - phase)
    return web.Response(text="ok")

async def main():
    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


@pytest.fixture
def stalling_server(tmp_path: Path) -> Iterator[str]:
    script = tmp_path / "stalling.py"
    script.write_text(STALLING_SERVER)
    process = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


class Index(TaskSet):
    @task
    async def index(self) -> None:
        await self.get("/")


def test_a_stall_shows_in_the_open_model_and_is_flagged_in_a_closed_one(
    stalling_server: str,
) -> None:
    started = time.monotonic()
    arrivals = run(Attack(Index), host=stalling_server, arrival_rate=40, run_time=4)
    open_stats = arrivals.all_metrics().requests[("GET", "/")]
    # a quarter of the arrivals came due in a stall: they waited up to a second
    assert open_stats.percentile_us(0.99) / 1000 >= 500
    assert arrivals.all_metrics().dropped == 0
    assert not arrivals.warnings

    console = quiet()
    closed = run(Attack(Index), console, host=stalling_server, users=2, hatch_rate=100, run_time=4)
    closed_stats = closed.metrics.requests[("GET", "/")]
    assert closed_stats.max_us / 1000 >= 500  # the stall happened in this run too
    assert closed_stats.percentile_us(0.99) / 1000 < 100  # but its percentiles hide it
    assert closed.warnings
    assert closed.warnings[0].startswith("coordinated omission likely: ")
    printed = console.file.getvalue()  # type: ignore[attr-defined]
    assert "coordinated omission likely" in printed
    assert "Latency: service time" in printed
    assert time.monotonic() - started < 15


# --- README ---------------------------------------------------------------------------------
def test_the_readme_open_model_example_runs(target: Target, tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Open model", 1)[1].split("\n## ", 1)[0]
    command = re.search(r"gaggle run (examples/open_model\.py .*)", section)
    assert command is not None, "the Open model section shows a runnable command"
    args = command.group(1).split("#")[0].split()
    args = [target.url if a.startswith("http://127.0.0.1:8080") else a for a in args]
    args[args.index("-t") + 1] = "1s"  # the README's minute, shortened
    report = tmp_path / "report.json"
    result = run_gaggle("run", *args, "--only-summary", "-R", str(report), timeout=60)
    assert result.returncode == 0, result.stderr
    assert "SCHEDULE" in result.stdout
    served = target.counts()
    rate = int(args[args.index("--arrival-rate") + 1])
    assert served["GET /about/ 200"] == rate  # one second's worth, each a whole iteration
    assert served["GET / 200"] == rate + served["POST /login 302"]  # on_start's redirect too
    data = json.loads(report.read_text())
    assert data["schedule"]["scheduled"] == int(rate)
    assert data["schedule"]["dropped"] == 0
    assert data["run"]["latency"].startswith("from the intended start")


def test_the_report_timeline_has_the_asked_rate_and_what_came_of_each_second(
    target: Target, tmp_path: Path
) -> None:
    """Target against actual over time (load-models §6): each second's asked rate, arrivals
    started and dropped, and the users asked for beside those running; the seconds add up to
    the whole schedule."""
    report = tmp_path / "report.json"
    result = run(Attack(Once), host=target.url, arrival_rate=10, run_time=2,
                 report_file=str(report))  # fmt: skip
    timeline = json.loads(report.read_text())["timeline"]
    started = sum(n for n in timeline["arrivals_started"] if n is not None)
    dropped = sum(n for n in timeline["arrivals_dropped"] if n is not None)
    assert (started, dropped) == (result.metrics.lag.timed_count, result.metrics.dropped)
    assert started + dropped == 20
    assert max(r for r in timeline["arrival_rate"] if r is not None) == 10
    assert "users_target" in timeline
    assert all("arrival_rate" not in series for series in timeline["by_request"]["series"])
