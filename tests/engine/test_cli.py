"""``gaggle run`` as a user runs it: a real process, real signals, exit codes and messages."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import Target, run_gaggle, spawn_gaggle, wait_for_count, write_test

PLAIN = """
from gaggle import TaskSet, task, constant

class Plain(TaskSet):
    wait_time = constant(0.05)

    @task
    async def index(self) -> None:
        await self.get("/")
"""

STOPPING = """
from gaggle import TaskSet, task, between

class Slowpoke(TaskSet):
    wait_time = between(5, 15)

    @task(on_start=True)
    async def hello(self) -> None:
        await self.get("/a")

    @task
    async def index(self) -> None:
        await self.get("/")

    @task(on_stop=True)
    async def bye(self) -> None:
        await self.get("/landing")
"""


write = write_test


BAD_INPUT = [
    # (extra args, test file text or None for PLAIN, words the message must contain)
    ([], None, ["--host", "no host defined for Plain"]),
    (["--host", "ftp://example"], None, ["--host", "'ftp://example'", "http://"]),
    (["--host", "127.0.0.1:8080"], None, ["--host", "'127.0.0.1:8080'"]),
    (["-u", "0"], None, ["--users", "'0'", "≥ 1"]),
    (["-u", "many"], None, ["--users", "'many'"]),
    (["-r", "0"], None, ["--hatch-rate", "'0'", "> 0"]),
    (["--hatch-rate=-2"], None, ["--hatch-rate", "'-2'"]),
    (["-t", "10x"], None, ["--run-time", "'10x'", "1h30m"]),
    (["--requests-format", "xml"], None, ["--requests-format", "'xml'", "json, csv, raw"]),
    (["--debug-format", "csv"], None, ["--debug-format", "'csv'", "json, raw"]),
    (["--scheduler", "fifo"], None, ["--scheduler", "'fifo'", "round-robin"]),
    (["--throttle-requests", "0"], None, ["--throttle-requests", "'0'"]),
    (["--running-metrics", "soon"], None, ["--running-metrics", "'soon'"]),
    (["--processes", "0"], None, ["--processes", "'0'", "auto"]),
    (["--metrics-bind", "9646"], None, ["--metrics-bind", "HOST:PORT"]),
    (["-R", "report.pdf"], None, ["--report-file", "'report.pdf'", ".html, .htm, .json"]),
    (["-R", "/no/such/dir/r.html"], None, ["--report-file", "cannot write there"]),
    (["--expect-workers", "2"], None, ["--expect-workers", "it goes with --manager"]),
    ([], "x = (\n", ["loadtest.py:1", "syntax error"]),
    ([], "import gaggle\n", ["defines no task set"]),
    (
        [],
        "from gaggle import TaskSet\nclass Empty(TaskSet):\n    pass\n",
        ["task set Empty has no tasks"],
    ),
    (
        [],
        "from gaggle import TaskSet, task\nclass S(TaskSet):\n    @task\n    def sync(self): ...\n",
        ["loadtest.py:3", "S.sync must be an async function"],
    ),
    (
        [],
        "from gaggle import TaskSet, task\nclass S(TaskSet):\n    @task(weight=0)\n"
        "    async def t(self): ...\n",
        ["weight=0", "whole number ≥ 1"],
    ),
    ([], "raise RuntimeError('broken helper')\n", ["loadtest.py:1", "RuntimeError: broken helper"]),
]


@pytest.mark.parametrize(("args", "text", "words"), BAD_INPUT)
def test_bad_input_is_one_clear_line_and_exit_2(
    tmp_path: Path, args: list[str], text: str | None, words: list[str]
) -> None:
    no_host_case = args == [] and text is None
    if not no_host_case and not any(a.startswith("--host") for a in args):
        args = [*args, "--host", "http://127.0.0.1:9"]
    if "-t" not in args:
        args = [*args, "-t", "1"]
    result = run_gaggle("run", write(tmp_path, text or PLAIN), *args)
    assert result.returncode == 2, result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("gaggle: error: ")
    for word in words:
        assert word in message, message


def test_missing_test_file(tmp_path: Path) -> None:
    result = run_gaggle("run", str(tmp_path / "nope.py"), "--host", "http://127.0.0.1:9")
    assert result.returncode == 2
    assert "nope.py" in result.stderr
    assert "not found" in result.stderr


def test_unknown_option_exits_2(tmp_path: Path) -> None:
    result = run_gaggle("run", write(tmp_path, PLAIN), "--hots", "http://127.0.0.1:9")
    assert result.returncode == 2
    assert "--hots" in result.stderr


def test_list_prints_task_sets_and_tasks(tmp_path: Path) -> None:
    result = run_gaggle("run", write(tmp_path, STOPPING), "--list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "1: Slowpoke (weight 1, wait between(5, 15))"
    assert "1: hello (weight 1) [on_start]" in lines[1]
    assert "3: bye (weight 1) [on_stop]" in lines[3]


def test_a_run_prints_the_tables_and_exits_0(target: Target, tmp_path: Path) -> None:
    result = run_gaggle(
        "run", write(tmp_path, PLAIN), "--host", target.url, "-u", "3", "-r", "30", "-t", "1",
        "--status-codes",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for heading in ("PER TASK METRICS", "PER REQUEST METRICS", "PERCENTILES (ms)", "Status codes"):
        assert heading in out
    assert "All 3 users hatched, resetting metrics (disable with --no-reset-metrics)." in out
    summary = out.split("resetting metrics")[-1]
    served = target.counts()["GET / 200"]
    assert "GET /" in summary
    assert "[200]" in summary
    assert served > 10


def test_requests_log_formats(target: Target, tmp_path: Path) -> None:
    test = write(tmp_path, PLAIN)
    for fmt in ("json", "csv", "raw"):
        log = tmp_path / f"requests.{fmt}"
        result = run_gaggle(
            "run", test, "--host", target.url, "-u", "2", "-r", "100", "-t", "1",
            "-m", str(log), "--requests-format", fmt, "--no-reset-metrics",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        lines = log.read_text().splitlines()
        if fmt == "json":
            first = json.loads(lines[0])
            assert list(first) == [
                "elapsed", "method", "name", "url", "final_url", "redirected",
                "response_time", "status_code", "success", "update", "user",
            ]  # fmt: skip
        elif fmt == "csv":
            rows = list(csv.DictReader(lines))
            assert rows[0]["method"] == "GET"
            assert rows[0]["status_code"] == "200"
        else:
            assert lines[0].startswith("RequestRecord(elapsed=")


def _start(test: str, target: Target, *extra: str) -> subprocess.Popen[str]:
    return spawn_gaggle("run", test, "--host", target.url, "-u", "4", "-r", "100", *extra)


def test_ctrl_c_stops_gracefully_runs_on_stop_and_prints_metrics(
    target: Target, tmp_path: Path
) -> None:
    process = _start(write(tmp_path, STOPPING), target)
    try:
        wait_for_count(target, "GET /a 200", 4)  # every user is in its 5..15 s pause now
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert time.monotonic() - started < 5  # pauses are cut short, not waited out
    assert "caught SIGINT, stopping" in err
    assert target.counts()["GET /landing 200"] == 4  # on_stop ran once per user
    assert "PER REQUEST METRICS" in out


def test_sigterm_stops_gracefully_too(target: Target, tmp_path: Path) -> None:
    process = _start(write(tmp_path, STOPPING), target)
    try:
        wait_for_count(target, "GET /a 200", 4)
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=20)
        assert "PER REQUEST METRICS" in out
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert target.counts()["GET /landing 200"] == 4


HANGING_STOP = """
import asyncio
from gaggle import TaskSet, task, constant

class Stubborn(TaskSet):
    wait_time = constant(0.1)

    @task
    async def index(self) -> None:
        await self.get("/")

    @task(on_stop=True)
    async def linger(self) -> None:
        await asyncio.sleep(60)
"""


def test_a_second_ctrl_c_exits_at_once(target: Target, tmp_path: Path) -> None:
    process = _start(write(tmp_path, HANGING_STOP), target)
    try:
        wait_for_count(target, "GET / 200", 4)
        process.send_signal(signal.SIGINT)
        time.sleep(0.5)  # users are now in their 60 s on_stop task
        assert process.poll() is None
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130
    assert "exiting now" in err


def test_python_dash_m_gaggle_and_version() -> None:
    result = run_gaggle("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("gaggle ")
