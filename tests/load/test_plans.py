"""Load models on one event loop: --test-plan stages, a LoadShape in the test file and
--iterations, against the counting target (what it served is what Gaggle counted), and the one
line each kind of bad input gets."""

from __future__ import annotations

import asyncio
import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from gaggle import Attack, ConfigError, LoadShape, RunResult, Stage, TaskSet, constant, task
from gaggle.load.stages import PlanStage
from gaggle.metrics.aggregate import Metrics
from gaggle.metrics.source import Source
from gaggle.options.config import build_config
from gaggle.options.converters import parse_stages
from gaggle.web.prometheus import GaggleCollector
from tests.conftest import ROOT, Target, run_gaggle, write_test

PAGES = """
from gaggle import TaskSet, task, constant

class Pages(TaskSet):
    wait_time = constant(0.02)

    @task(on_start=True)
    async def hello(self) -> None:
        await self.get("/start")

    @task
    async def index(self) -> None:
        await self.get("/")

    @task
    async def about(self) -> None:
        await self.get("/about/")

    @task(on_stop=True)
    async def bye(self) -> None:
        await self.get("/landing")
"""


class Pages(TaskSet):
    """A two-task cycle between an on_start and an on_stop task, each its own path."""

    wait_time = constant(0.02)

    @task(on_start=True)
    async def hello(self) -> None:
        await self.get("/start")

    @task
    async def index(self) -> None:
        await self.get("/")

    @task
    async def about(self) -> None:
        await self.get("/about/")

    @task(on_stop=True)
    async def bye(self) -> None:
        await self.get("/landing")


def quiet() -> Console:
    return Console(file=io.StringIO(), width=140, highlight=False)


def run(attack: Attack, console: Console, **options: Any) -> RunResult:
    return asyncio.run(attack.run_async(console=console, **options))


def counted(result: RunResult) -> dict[str, int]:
    """Gaggle's totals keyed as the target counts: "GET / 200"."""
    out: dict[str, int] = {}
    for (method, name), stats in result.all_metrics().requests.items():
        for status, count in stats.status_codes.items():
            out[f"{method} {name} {status}"] = count
    return out


def stopped_users(caplog: pytest.LogCaptureFixture) -> list[int]:
    """The user numbers (from 1) the plan asked to stop, in the order it asked."""
    said = (re.match(r"stopping user (\d+): ", r.getMessage()) for r in caplog.records)
    return [int(match.group(1)) for match in said if match]


def landing_users(path: Path) -> list[int]:
    """The users whose on_stop request appears in a requests log, in the order they made it."""
    records = [json.loads(line) for line in path.read_text().splitlines()]
    stops = sorted((r for r in records if r["name"] == "/landing"), key=lambda r: r["elapsed"])
    return [r["user"] for r in stops]


# --- the plan's text ----------------------------------------------------------------------------
def test_a_plan_reads_goose_durations_and_fractions() -> None:
    assert parse_stages("--test-plan", "10,1m;10,5m;0,30s") == (
        PlanStage(10, 60.0),
        PlanStage(10, 300.0),
        PlanStage(0, 30.0),
    )
    assert parse_stages("--test-plan", " 3,1h30m ; 2,0.5s;1,2;") == (
        PlanStage(3, 5400.0),
        PlanStage(2, 0.5),
        PlanStage(1, 2.0),
    )
    config = build_config({"test_plan": "10,1m;25,0.5s;0,30s"})
    assert config.test_plan == "10,60;25,0.5;0,30"  # canonical: what a manager would send
    assert config.users == 25  # the plan's peak names the run's users


def test_the_later_layer_chooses_between_a_plan_and_users() -> None:
    # a program's default plan, and -u on the command line: the command line wins (and back)
    assert build_config({"test_plan": "2,1s"}, {"users": 3}).test_plan is None
    assert build_config({"users": 3, "run_time": 5}, {"test_plan": "2,1s"}).run_time == 0


BAD_PLANS = [
    ("10,1m;x", ["stage 2", "'x'", "USERS,DURATION"]),
    ("10,1m;-1,3s", ["stage 2", "'-1,3s'", "whole number ≥ 0"]),
    ("10,1m;100/s,1m", ["stage 2", "'100/s,1m'", "all USERS,DURATION"]),  # a mix of models
    ("5,soon", ["stage 1", "'5,soon'", "30s, 1m, 1h30m"]),
    ("5", ["stage 1", "'5'"]),
]


@pytest.mark.parametrize(("plan", "words"), BAD_PLANS)
def test_a_malformed_stage_is_named_with_its_number_and_text(plan: str, words: list[str]) -> None:
    with pytest.raises(ConfigError) as raised:
        build_config({"test_plan": plan})
    message = str(raised.value)
    assert message.startswith("--test-plan: ")
    assert "\n" not in message
    for word in words:
        assert word in message, message


SHAPE_TWICE = (
    PAGES
    + """
from gaggle import LoadShape, Stage

class First(LoadShape):
    def tick(self, elapsed_seconds: float) -> Stage | None:
        return None

class Second(LoadShape):
    def tick(self, elapsed_seconds: float) -> Stage | None:
        return None
"""
)
SHAPE_OF_TEXT = (
    PAGES
    + """
from gaggle import LoadShape

class Wordy(LoadShape):
    def tick(self, elapsed_seconds: float):
        return "ten users"
"""
)
CLI_BAD_INPUT = [
    (["--test-plan", "2,1s;x,1s"], PAGES, ["--test-plan", "stage 2", "'x,1s'"]),
    (["--test-plan", "2,1s", "-u", "3"], PAGES, ["--test-plan", "--users"]),
    (["--test-plan", "2,1s", "-r", "3"], PAGES, ["--test-plan", "--hatch-rate"]),
    (["--test-plan", "2,1s", "-t", "3"], PAGES, ["--test-plan", "--run-time"]),
    (["--test-plan", "2,1s", "--iterations", "3"], PAGES, ["--test-plan", "--iterations"]),
    (["--iterations", "0"], PAGES, ["--iterations", "0", "whole number ≥ 1"]),
    (["--users=-2"], PAGES, ["--users", "'-2'", "whole number ≥ 1"]),
    ([], SHAPE_TWICE, ["2 load shapes", "First", "Second", "keep one"]),
    ([], SHAPE_OF_TEXT, ["Wordy.tick(0.0)", "'ten users'", "str", "gaggle.Stage"]),
    (["-u", "2"], SHAPE_OF_TEXT.replace("Wordy", "Good").replace('"ten users"', "None"),
     ["--users", "load shape Good"]),
]  # fmt: skip


@pytest.mark.parametrize(("args", "text", "words"), CLI_BAD_INPUT)
def test_bad_load_input_is_one_line_and_exit_2(
    tmp_path: Path, args: list[str], text: str, words: list[str]
) -> None:
    result = run_gaggle("run", write_test(tmp_path, text), "-H", "http://127.0.0.1:9", *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("gaggle: error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_list_shows_the_load_shape(tmp_path: Path) -> None:
    text = SHAPE_OF_TEXT.replace('"ten users"', "None")
    result = run_gaggle("run", write_test(tmp_path, text), "--list")
    assert result.returncode == 0, result.stderr
    assert "load shape: Wordy (a tick every 1 s)" in result.stdout


# --- iterations -----------------------------------------------------------------------------------
def test_four_users_times_three_iterations_of_two_tasks_are_24_requests(target: Target) -> None:
    result = run(
        Attack(Pages), quiet(), host=target.url, users=4, hatch_rate=100, iterations=3,
        run_time=60,
    )  # fmt: skip
    served = target.counts()
    assert served["GET / 200"] + served["GET /about/ 200"] == 24
    assert served["GET / 200"] == served["GET /about/ 200"] == 12  # each task once per cycle
    assert served["GET /start 404"] == served["GET /landing 200"] == 4  # on_start, on_stop once
    assert counted(result) == served
    assert result.stopped_by == "every user ran its 3 iteration(s)"  # not the 60 s run time


def test_the_run_time_ends_iterations_that_would_go_on(target: Target) -> None:
    result = run(
        Attack(Pages), quiet(), host=target.url, users=2, hatch_rate=100,
        iterations=1_000_000, run_time=0.5,
    )  # fmt: skip
    assert result.stopped_by == "run time elapsed"
    served = target.counts()
    assert served["GET /landing 200"] == 2  # stopped users still say goodbye
    assert counted(result) == served


# --- a staged plan --------------------------------------------------------------------------------
def test_a_plan_stops_the_last_started_first_and_counts_exactly(
    target: Target, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="gaggle")
    log = tmp_path / "requests.json"
    console = quiet()
    # 3 users; down to 1 (users 3 then 2 stop, 0.2 s apart); up to 2 (user 2 again); down to 0.
    result = run(
        Attack(Pages), console, host=target.url, test_plan="3,0.2s;3,0.2s;1,0.4s;2,0.2s;0,0.4s",
        requests_file=str(log),
    )  # fmt: skip
    assert result.stopped_by == "the test plan is over"
    served = target.counts()
    assert counted(result) == served
    assert served["GET /start 404"] == served["GET /landing 200"] == 4  # 3 + 1 users started
    # the last started is asked to stop first; each asked runs its on_stop once (their
    # /landing requests may reach the target in either order when two stop in one tick)
    assert stopped_users(caplog) == [3, 2, 2, 1]
    assert sorted(landing_users(log)) == [0, 1, 1, 2]
    assert "All 3 users hatched, resetting metrics" in console.file.getvalue()  # type: ignore[attr-defined]
    assert result.hatch_metrics is not None
    assert result.hatch_metrics.requests  # what the stage before the reset did


def test_a_plan_keeps_the_task_set_weights_as_it_shrinks(target: Target, tmp_path: Path) -> None:
    class Often(Pages):
        weight = 2

    class Seldom(TaskSet):
        weight = 1
        wait_time = constant(0.02)

        @task
        async def other(self) -> None:
            await self.get("/other")

    log = tmp_path / "requests.json"
    run(Attack(Often, Seldom), quiet(), host=target.url, test_plan="3,0;3,0.3s;1,0;1,0.3s;0,0",
        requests_file=str(log))  # fmt: skip
    records = [json.loads(line) for line in log.read_text().splitlines()]
    late = [r for r in records if r["elapsed"] > 400]  # after the plan went down to one user
    assert late
    assert {r["user"] for r in late} == {0}  # the first user, of the heavier task set
    assert {r["name"] for r in late} <= {"/", "/about/", "/landing"}


def test_no_reset_metrics_keeps_the_plan_whole(target: Target) -> None:
    console = quiet()
    result = run(Attack(Pages), console, host=target.url, test_plan="2,0.1s;2,0.3s;0,0",
                 no_reset_metrics=True)  # fmt: skip
    assert result.hatch_metrics is None
    assert "All 2 users hatched." in console.file.getvalue()  # type: ignore[attr-defined]
    assert counted(result) == target.counts()


def test_the_report_marks_each_stage(target: Target, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    run(Attack(Pages), quiet(), host=target.url, test_plan="1,0;2,0.2s;0,0",
        report_file=str(report))  # fmt: skip
    data = json.loads(report.read_text())
    assert data["run"]["test_plan"] == "1,0;2,0.2;0,0"
    stages = data["timeline"]["stages"]
    assert [stage["label"].split(" (")[0] for stage in stages] == ["stage 1", "stage 2", "stage 3"]
    assert stages == sorted(stages, key=lambda stage: stage["at"])


# --- a load shape ---------------------------------------------------------------------------------
class UpAndDown(LoadShape):
    tick_interval = 0.05

    def tick(self, elapsed_seconds: float) -> Stage | None:
        if elapsed_seconds < 0.4:
            return Stage(users=3, hatch_rate=100)
        if elapsed_seconds < 0.8:
            return Stage(users=1, hatch_rate=10)  # 0.1 s apart: the order is plain
        return None


def test_a_load_shape_drives_the_users_until_its_tick_says_none(
    target: Target, tmp_path: Path
) -> None:
    log = tmp_path / "requests.json"
    result = run(Attack(Pages).set_load_shape(UpAndDown), quiet(), host=target.url,
                 requests_file=str(log))  # fmt: skip
    assert result.stopped_by == "the load shape UpAndDown ended"
    served = target.counts()
    assert counted(result) == served
    assert served["GET /start 404"] == served["GET /landing 200"] == 3
    assert landing_users(log) == [2, 1, 0]


BAD_TICK_LATER = (
    PAGES
    + """
from gaggle import LoadShape, Stage

class Flaky(LoadShape):
    tick_interval = 0.05

    def tick(self, elapsed_seconds: float):
        return Stage(2, 100) if elapsed_seconds < 0.3 else 2
"""
)


def test_a_bad_tick_mid_run_ends_the_run_with_exit_2(target: Target, tmp_path: Path) -> None:
    target.reset()
    result = run_gaggle("run", write_test(tmp_path, BAD_TICK_LATER), "-H", target.url,
                        "--only-summary", timeout=30)  # fmt: skip
    assert result.returncode == 2, result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("gaggle: error: load shape Flaky.tick("), message  # (0.3) or so
    assert "returned 2 (int)" in message
    assert target.counts()["GET /landing 200"] == 2  # its users stopped gracefully


def test_prometheus_shows_the_users_the_load_asks_for() -> None:
    source = Source(metrics=Metrics, users=lambda: 3, users_target=lambda: 5)
    families = {family.name: family for family in GaggleCollector(source).collect()}
    assert families["gaggle_users_target"].samples[0].value == 5
    assert families["gaggle_users"].samples[0].value == 3


# --- the documented examples ----------------------------------------------------------------------
def test_the_staged_plan_example_runs_with_a_plan_of_its_own(target: Target) -> None:
    example = str(ROOT / "examples" / "staged_plan.py")
    result = subprocess.run(
        [sys.executable, example, "--host", target.url, "--test-plan", "2,0.2s;0,0.2s",
         "--only-summary"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    served = target.counts()
    assert served["POST /login 302"] == 2  # both users of the plan logged in
    assert served["GET /logout 404"] == 2  # and ran their on_stop task when the plan ended


def test_the_readme_load_shape_is_found_and_checked(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    spike = next(block for block in blocks if "class Spike(LoadShape)" in block)
    result = run_gaggle("run", write_test(tmp_path, spike, "spike.py"), "--list")
    assert result.returncode == 0, result.stderr
    assert "load shape: Spike (a tick every 1 s)" in result.stdout
