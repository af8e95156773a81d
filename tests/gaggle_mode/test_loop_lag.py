"""A worker's blocked event loop in Gaggle mode (review D13): the worker names the task, and its
worst lag reaches the manager through the heartbeats — the manager's report and its ``loopLag``
rule judge the gaggle's worst. Real processes on 127.0.0.1 against the counting target."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Target, finish, free_port, kill_leftovers, spawn_gaggle, write_test
from tests.engine.test_loop_watch import BLOCKING, LOWER_BOUND, WARNING
from tests.gaggle_mode.test_mode import start_worker


def test_d13_a_workers_blocked_loop_fails_the_managers_loop_lag_rule(
    target: Target, tmp_path: Path
) -> None:
    test, port, report = write_test(tmp_path, BLOCKING), free_port(), tmp_path / "report.json"
    manager = spawn_gaggle(
        "run", test, "--manager", "--expect-workers", "1", "--manager-bind-host", "127.0.0.1",
        "--manager-bind-port", str(port), "--host", target.url, "-u", "2", "-r", "100",
        "-t", "3", "-R", str(report), "--threshold", "loopLag < 100",
        "--metrics-bind", f"127.0.0.1:{free_port()}",
    )  # fmt: skip
    worker = None
    try:
        worker = start_worker(test, port)
        code, err = finish(manager, timeout=60)
        assert code == 3, err  # the rule failed (before its end, none waits for the worker)
        worker_code, worker_err = finish(worker, timeout=30)
    finally:
        kill_leftovers(manager, worker)
    assert worker_code == 0, worker_err
    assert worker_err.count(WARNING) == 1, worker_err  # the worker names its task, once
    assert "while task Shop.checkout ran" in worker_err
    assert WARNING not in err  # the manager's own loop was not blocked
    assert "threshold failed: loopLag < 100" in err
    data = json.loads(report.read_text())
    assert data["loop_lag"]["max_seconds"] >= LOWER_BOUND
    (rule,) = data["thresholds"]
    assert rule["expression"] == "loopLag < 100"
    assert rule["observed"] >= LOWER_BOUND * 1000
    assert rule["passed"] is False
