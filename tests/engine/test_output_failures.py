"""A file that cannot be written mid-run never costs the run (review D6, issue item 6): the
failure is one line naming the option and the path, that file is closed, and the tables, the
other files and the run's own exit code are still delivered.

Linux's /dev/full opens fine (so the check before the load passes) and fails every write with
ENOSPC: a disk that filled up under the run, made deterministic.
"""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pytest
from rich.console import Console

from gaggle import TaskSet, constant, task
from tests.conftest import Target, run_gaggle, spawn_gaggle, wait_for_count, write_test
from tests.engine.test_engine import run

FULL = "/dev/full"
pytestmark = pytest.mark.skipif(not Path(FULL).exists(), reason="needs Linux's /dev/full")

DEBUGGING = """
from gaggle import TaskSet, task, constant

class Debugging(TaskSet):
    wait_time = constant(0.02)

    @task
    async def index(self) -> None:
        response = await self.get("/")
        self.log_debug("looked at the index", response)
"""


@pytest.mark.parametrize(
    ("flag", "option"),
    [("-m", "--requests-file"), ("-d", "--debug-file"), ("-L", "--log-file")],
)
def test_d6_a_full_disk_under_a_log_is_one_line_and_the_run_goes_on(
    target: Target, tmp_path: Path, flag: str, option: str
) -> None:
    report = tmp_path / "x.json"
    result = run_gaggle(
        "run", write_test(tmp_path, DEBUGGING), "--host", target.url, "-u", "2", "-r", "100",
        "-t", "1", "-g", flag, FULL, "-R", str(report), "--no-reset-metrics",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr  # the run's own verdict: it passed
    assert "Traceback" not in result.stderr, result.stderr
    assert "Logging error" not in result.stderr, result.stderr
    about = [line for line in result.stderr.splitlines() if FULL in line]
    assert len(about) == 1, result.stderr
    assert option in about[0]
    assert "No space left on device" in about[0]
    assert "PER REQUEST METRICS" in result.stdout  # the summary
    served = target.counts()["GET / 200"]
    data = json.loads(report.read_text())  # the other files
    assert data["requests_total"]["count"] == served


def test_d6_a_full_disk_under_the_requests_log_in_process(target: Target, console: Console) -> None:
    """``Attack.run_async`` returns its result; the run's numbers are whole."""

    class Plain(TaskSet):
        wait_time = constant(0.02)

        @task
        async def index(self) -> None:
            await self.get("/")

    result = run(
        Plain, console=console, host=target.url, users=2, run_time=0.6, requests_file=FULL,
        no_reset_metrics=True,
    )  # fmt: skip
    assert result.all_metrics().requests[("GET", "/")].count == target.counts()["GET / 200"]


def test_d6_a_report_directory_removed_mid_run_is_one_line(target: Target, tmp_path: Path) -> None:
    place = tmp_path / "out"
    place.mkdir()
    report = place / "report.html"
    process = spawn_gaggle(
        "run", write_test(tmp_path, DEBUGGING), "--host", target.url, "-u", "2", "-r", "100",
        "-t", "60", "-R", str(report), "--no-live",
    )  # fmt: skip
    try:
        wait_for_count(target, "GET / 200", 4)  # past the check: the run is loading
        shutil.rmtree(place)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "Traceback" not in err, err
    about = [line for line in err.splitlines() if str(report) in line]
    assert len(about) == 1, err
    assert "--report-file" in about[0]
    assert "No such file or directory" in about[0]
    assert "PER REQUEST METRICS" in out
