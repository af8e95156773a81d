"""The event loop is watched (review D13): a task that blocks it (``time.sleep``, CPU work) is
named in one warning, the loop's worst lag is in the tables, the JSON report and Prometheus, and
``--threshold 'loopLag < N'`` (ms) judges it. Real processes of the CLI against the counting
target; only lower bounds on the lag (a loaded machine makes it larger, never smaller)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gaggle.metrics import ThresholdError, parse_threshold
from tests.conftest import (
    Target,
    free_port,
    kill_leftovers,
    run_gaggle,
    scrape,
    spawn_gaggle,
)
from tests.conftest import write_test as write

BLOCKING = """
import time
from gaggle import TaskSet, task, constant

STALLS = []

class Shop(TaskSet):
    wait_time = constant(0.05)

    @task
    async def browse(self) -> None:
        await self.get("/")

    @task
    async def checkout(self) -> None:
        await self.get("/")
        if len(STALLS) < 2:  # twice: two stalls of the one task, one warning
            STALLS.append(True)
            time.sleep(1.0)
"""

CALM = """
from gaggle import TaskSet, task, constant

class Shop(TaskSet):
    wait_time = constant(0.05)

    @task
    async def browse(self) -> None:
        await self.get("/")
"""

WARNING = "the event loop was blocked for at least"
LOWER_BOUND = 0.8  # a 1 s block, less at most one tick (0.1 s) before it began


def loop_lag_gauge(port: int) -> float | None:
    """``gaggle_loop_lag_seconds`` on the /metrics of 127.0.0.1:port; None: no answer yet."""
    try:
        page = scrape(port)
    except OSError:
        return None
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            if sample.name == "gaggle_loop_lag_seconds":
                return float(sample.value)
    raise AssertionError(f"no gaggle_loop_lag_seconds in /metrics:\n{page}")


def test_d13_a_blocking_task_is_named_once_and_its_lag_is_in_tables_report_and_prometheus(
    target: Target, tmp_path: Path
) -> None:
    report, port = tmp_path / "report.json", free_port()
    process = spawn_gaggle(
        "run", write(tmp_path, BLOCKING), "--host", target.url, "-u", "2", "-r", "100",
        "-t", "4", "-R", str(report), "--metrics-bind", f"127.0.0.1:{port}",
    )  # fmt: skip
    try:
        deadline, seen = time.monotonic() + 30, 0.0
        while seen < LOWER_BOUND and process.poll() is None:  # the gauge, while it runs
            assert time.monotonic() < deadline, "the gauge never showed the stall"
            seen = max(seen, loop_lag_gauge(port) or 0.0)
            time.sleep(0.1)
        out, err = process.communicate(timeout=30)
    finally:
        kill_leftovers(process)
    assert process.returncode == 0, err
    assert seen >= LOWER_BOUND
    assert err.count(WARNING) == 1, err  # two stalls, one warning
    assert "while task Shop.checkout ran (at loadtest.py:" in err
    assert "asyncio.to_thread" in err
    data = json.loads(report.read_text())
    assert data["loop_lag"]["max_seconds"] >= LOWER_BOUND
    assert "Event loop lag: up to " in out


BLOCKS = {  # how the task blocks the loop: a blocking call, or CPU work
    "sleep": "time.sleep(1.0)",
    "cpu": "end = time.monotonic() + 1.0\n            while time.monotonic() < end:\n"
    "                pass",
}


@pytest.mark.parametrize("how", BLOCKS)
def test_d13_a_loop_lag_threshold_fails_the_run_with_exit_3(
    target: Target, tmp_path: Path, how: str
) -> None:
    test = BLOCKING.replace("time.sleep(1.0)", BLOCKS[how])
    result = run_gaggle(
        "run", write(tmp_path, test), "--host", target.url, "-u", "1", "-r", "100",
        "-t", "2", "--threshold", "loopLag < 100",
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert result.stderr.count(WARNING) == 1, result.stderr
    assert "while task Shop.checkout ran" in result.stderr
    assert "threshold failed: loopLag < 100" in result.stderr
    row = next(line for line in result.stdout.splitlines() if "loopLag < 100" in line)
    assert "FAILED" in row


def test_d13_a_run_that_does_not_block_the_loop_has_no_warning(
    target: Target, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    result = run_gaggle(
        "run", write(tmp_path, CALM), "--host", target.url, "-u", "2", "-r", "100", "-t", "1",
        "-R", str(report), "--threshold", "loopLag < 60000",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "event loop" not in result.stderr
    data = json.loads(report.read_text())
    assert data["loop_lag"]["max_seconds"] >= 0
    assert data["thresholds"][0]["expression"] == "loopLag < 60000"
    assert data["thresholds"][0]["passed"] is True


@pytest.mark.parametrize(
    ("rule", "why"),
    [("loopLag(GET /) < 100", "event loop: name no request"), ("loopLag < x", "loopLag \\(")],
)
def test_d13_a_loop_lag_rule_names_no_request_and_a_number(rule: str, why: str) -> None:
    with pytest.raises(ThresholdError, match=why):  # the second: the allowed list names it
        parse_threshold(rule)
    assert parse_threshold("loopLag <= 250").value == 250
