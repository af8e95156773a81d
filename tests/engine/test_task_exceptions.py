"""Nothing a task raises escapes (review D12): ``SystemExit``, ``KeyboardInterrupt`` and
``asyncio.CancelledError`` raised by a task are task failures like any exception — counted,
logged once, in the errors table — and the user goes on; the process's own Ctrl-C still stops
the run. Real processes of the CLI against the counting target."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.conftest import Target, kill_leftovers, run_gaggle, spawn_gaggle, wait_for_count
from tests.conftest import write_test as write

RAISING = """
import asyncio
import sys
from gaggle import TaskSet, task, constant

class Raising(TaskSet):
    wait_time = constant(0.05)

    @task(sequence=1)
    async def index(self) -> None:
        await self.get("/")

    @task(sequence=2)
    async def boom(self) -> None:
        RAISE
"""

RAISES = {  # what the task runs → how the errors table names it
    "sys.exit(5)": "SystemExit: 5",
    "raise KeyboardInterrupt": "KeyboardInterrupt",
    "raise asyncio.CancelledError": "CancelledError",
}


@pytest.mark.parametrize("statement", RAISES)
def test_d12_a_task_raising_a_base_exception_is_a_task_failure_and_the_user_goes_on(
    target: Target, tmp_path: Path, statement: str
) -> None:
    report = tmp_path / "report.json"
    result = run_gaggle(
        "run", write(tmp_path, RAISING.replace("RAISE", statement)), "--host", target.url,
        "-u", "1", "-t", "2", "--no-reset-metrics", "-R", str(report),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    rows = {row["task"]: row for row in data["tasks"]}
    boom, index = rows["boom"], rows["index"]
    assert boom["count"] == boom["fails"] >= 2  # it raised each time, and the user went on
    assert index["count"] >= boom["count"]
    assert index["fails"] == 0
    served = target.counts()["GET / 200"]
    assert data["requests_total"]["count"] == served  # every request counted, the last too
    error = f"task Raising.boom: {RAISES[statement]}"
    shown = {row["error"]: row["count"] for row in data["errors"]["shown"]}
    assert shown == {error: boom["fails"]}
    assert error in result.stdout  # the errors table
    assert result.stderr.count(f"task Raising.boom raised {RAISES[statement]}") == 1  # once


INIT_RAISES = """
import sys
from gaggle import TaskSet, task

class Quitter(TaskSet):
    def __init__(self) -> None:
        sys.exit(5)

    @task
    async def index(self) -> None:
        await self.get("/")

class Worker(TaskSet):
    @task
    async def index(self) -> None:
        await self.get("/a")
"""


def test_d12_a_task_set_whose_init_calls_sys_exit_is_counted_and_the_run_goes_on(
    target: Target, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    result = run_gaggle(
        "run", write(tmp_path, INIT_RAISES), "--host", target.url, "-u", "2", "-r", "100",
        "-t", "1", "--no-reset-metrics", "-R", str(report),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    shown = {row["error"] for row in json.loads(report.read_text())["errors"]["shown"]}
    assert shown == {"Quitter.__init__: SystemExit: 5"}
    assert target.counts().get("GET / 200", 0) == 0
    assert target.counts()["GET /a 200"] > 0  # the other user ran on


def test_d12_ctrl_c_still_stops_a_run_whose_tasks_raise_keyboard_interrupt(
    target: Target, tmp_path: Path
) -> None:
    test = write(tmp_path, RAISING.replace("RAISE", "raise KeyboardInterrupt"))
    process = spawn_gaggle("run", test, "--host", target.url, "-u", "2", "-r", "100")
    try:
        wait_for_count(target, "GET / 200", 6)  # each user went on past its KeyboardInterrupts
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        kill_leftovers(process)
    assert process.returncode == 0, err
    assert "caught SIGINT, stopping" in err
    assert "task Raising.boom: KeyboardInterrupt" in out
