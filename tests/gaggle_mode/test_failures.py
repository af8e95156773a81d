"""Gaggle mode when things go wrong, with real processes and sockets on 127.0.0.1: workers that
die, freeze, stay busy or arrive late, and a manager that is not there."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import (
    Target,
    finish,
    free_port,
    kill_leftovers,
    run_gaggle,
    spawn_gaggle,
    wait_for_count,
    wait_for_metric,
    write_test,
)
from tests.gaggle_mode.test_mode import TEST, start_manager, start_worker


def users_in(log: Path) -> set[int]:
    return {json.loads(line)["user"] for line in log.read_text().splitlines()}


def kill_one_and_replace(
    test: str, port: int, metrics: int, target: Target, logs: list[Path],
    workers: list[subprocess.Popen[str]],
) -> None:  # fmt: skip
    """Two workers (requests logs ``logs[0]``, ``logs[1]``) join the manager on ``port``; once
    20 iterations are served the second is SIGKILLed and, once the manager counts it lost, a
    third (``logs[2]``) joins in its place. ``workers`` gets all three, for the caller's
    cleanup."""
    time.sleep(0.5)
    workers.extend(start_worker(test, port, "-m", str(log)) for log in logs[:2])
    wait_for_count(target, "GET / 200", 20)
    workers[1].kill()
    workers[1].wait()
    wait_for_metric(metrics, "gaggle_workers_lost_total 1.0", timeout=3)
    workers.append(start_worker(test, port, "-m", str(logs[2])))


def test_a_worker_joining_mid_run_takes_the_place_of_a_lost_one(
    target: Target, tmp_path: Path
) -> None:
    test, port, metrics = write_test(tmp_path, TEST), free_port(), free_port()
    # the run lasts until the test has seen it all (a -t of 6 s had ended, on a loaded machine,
    # before the extra worker came), then Ctrl-C ends it
    manager = start_manager(test, target, port, "-t", "120", metrics_port=metrics)
    logs = [tmp_path / f"requests-{name}.json" for name in "abc"]
    workers: list[subprocess.Popen[str]] = []
    try:
        kill_one_and_replace(test, port, metrics, target, logs, workers)  # its users are gone
        page = wait_for_metric(metrics, "gaggle_users 4.0", timeout=10)
        assert "gaggle_workers_connected 2.0" in page  # back to the requested gaggle
        extra_code, extra_err = finish(start_worker(test, port))  # nobody left to replace
        manager.send_signal(signal.SIGINT)
        code, err = finish(manager)
        exits = [finish(workers[0])[0], finish(workers[2])[0]]
    finally:
        kill_leftovers(manager, *workers)
    assert code == 0, err
    assert exits == [0, 0]
    assert "joined mid-run" in err
    assert extra_code == 2
    assert "takes the place of a lost one" in extra_err
    # The newcomer ran exactly the users the lost worker had (its own log died with it in its
    # buffer): the survivor's and the newcomer's are disjoint and make up the gaggle's four.
    survivor, newcomer = users_in(logs[0]), users_in(logs[2])
    assert len(survivor) == len(newcomer) == 2
    assert survivor | newcomer == {0, 1, 2, 3}


def test_a_frozen_worker_is_lost_and_stops_its_load_when_it_wakes(
    target: Target, tmp_path: Path
) -> None:
    """SIGSTOP keeps the worker's TCP connection open: only the heartbeats can tell."""
    test, port, metrics = write_test(tmp_path, TEST), free_port(), free_port()
    manager = start_manager(test, target, port, "-t", "8", metrics_port=metrics)
    workers = []
    try:
        time.sleep(0.5)
        workers = [start_worker(test, port) for _ in range(2)]
        wait_for_count(target, "GET / 200", 20)
        workers[1].send_signal(signal.SIGSTOP)
        frozen = time.monotonic()
        wait_for_metric(metrics, "gaggle_workers_lost_total 1.0", timeout=6)
        noticed = time.monotonic() - frozen
        workers[1].send_signal(signal.SIGCONT)
        woke = time.monotonic()
        frozen_code, frozen_err = finish(workers[1], timeout=10)
        stopped_in = time.monotonic() - woke
        code, err = finish(manager)
        survivor, _ = finish(workers[0])
    finally:
        kill_leftovers(manager, *workers)
    assert 2.5 < noticed < 5.5  # silence for 3 s means lost; a tick later at most
    assert "silent for" in err
    assert frozen_code == 1, frozen_err
    assert "lost the manager" in frozen_err
    assert stopped_in < 5
    assert (code, survivor) == (0, 0), err


BUSY = """
import time
from gaggle import TaskSet, task, constant

BLOCKED = []

class Busy(TaskSet):
    wait_time = constant(0.05)

    @task
    async def index(self) -> None:
        await self.get("/")
        if not BLOCKED:  # once: hold the users' event loop with pure CPU for 4.5 s
            BLOCKED.append(True)
            end = time.monotonic() + 4.5
            while time.monotonic() < end:
                pass
"""


def wait_for_lag(port: int, at_least: float, timeout: float) -> str:
    """Scrape until worker 1's loop lag gauge reads ``at_least`` seconds (it shows the worst of
    the last 2 s, a block in progress included); the page that had it."""
    deadline = time.monotonic() + timeout
    prefix = 'gaggle_worker_loop_lag_seconds{worker="1"} '
    while True:
        page = wait_for_metric(port, prefix, max(0.1, deadline - time.monotonic()))
        lag = next(float(row[len(prefix) :]) for row in page.splitlines() if row.startswith(prefix))
        if lag >= at_least:
            return page
        assert time.monotonic() < deadline, f"worker 1's loop lag never reached {at_least} s"
        time.sleep(0.1)


def test_a_worker_whose_loop_is_saturated_is_not_taken_for_dead(
    target: Target, tmp_path: Path
) -> None:
    """Locust loses busy workers because their heartbeats share the busy loop (locust#1843);
    ours come from a thread of their own, and the loop's lag is reported instead."""
    test, port, metrics = write_test(tmp_path, BUSY), free_port(), free_port()
    manager = spawn_manager_for_one(test, target, port, metrics)
    worker = None
    try:
        time.sleep(0.5)
        worker = start_worker(test, port)
        page = wait_for_lag(metrics, at_least=3.0, timeout=30)  # the block is 4.5 s
        assert "gaggle_workers_lost_total 0.0" in page
        code, err = finish(manager)
        worker_code, worker_err = finish(worker)
    finally:
        kill_leftovers(manager, worker)
    assert (code, worker_code) == (0, 0), (err, worker_err)
    assert "lost worker" not in err
    assert target.counts()["GET / 200"] > 10


def spawn_manager_for_one(
    test: str, target: Target, port: int, metrics: int
) -> subprocess.Popen[str]:
    return spawn_gaggle(
        "run", test, "--manager", "--expect-workers", "1", "--manager-bind-host", "127.0.0.1",
        "--manager-bind-port", str(port), "--host", target.url, "-u", "2", "-r", "100", "-t", "7",
        "--metrics-bind", f"127.0.0.1:{metrics}",
    )  # fmt: skip


def test_a_worker_without_a_manager_retries_then_names_the_address(tmp_path: Path) -> None:
    test, port = write_test(tmp_path, TEST), free_port()
    began = time.monotonic()
    result = run_gaggle("run", test, "--worker", "--manager-port", str(port), "--join-timeout", "2")
    took = time.monotonic() - began
    assert result.returncode == 2, result.stderr
    assert f"no manager answered at 127.0.0.1:{port} within 2 s" in result.stderr
    assert "waiting for the manager" in result.stderr
    assert 2 <= took < 15


def test_a_worker_told_to_leave_on_sigterm_leaves_alone_with_exact_numbers(
    target: Target, tmp_path: Path
) -> None:
    """A deleted pod gets SIGTERM: with --leave-on-sigterm that worker stops its users, sends
    its final delta and leaves; the gaggle goes on and its totals stay exact."""
    test, port, metrics = write_test(tmp_path, TEST), free_port(), free_port()
    manager = spawn_gaggle(
        "run", test, "--manager", "--expect-workers", "2", "--manager-bind-host", "127.0.0.1",
        "--manager-bind-port", str(port), "--host", target.url, "-u", "4", "-r", "100", "-t", "4",
        "--metrics-bind", f"127.0.0.1:{metrics}", "--no-reset-metrics", "--only-summary",
    )  # fmt: skip
    workers = []
    try:
        time.sleep(0.5)
        workers = [start_worker(test, port, "--leave-on-sigterm") for _ in range(2)]
        wait_for_count(target, "GET / 200", 20)
        workers[0].send_signal(signal.SIGTERM)
        left_code, _ = finish(workers[0])
        page = wait_for_metric(metrics, "gaggle_workers_lost_total 1.0", timeout=5)
        assert "gaggle_workers_connected 1.0" in page
        before = target.counts()["GET / 200"]
        wait_for_count(target, "GET / 200", before + 10)  # the other one carries on
        out, err = manager.communicate(timeout=20)
        stayed, _ = finish(workers[1])
    finally:
        kill_leftovers(manager, *workers)
    assert (manager.returncode, left_code, stayed) == (0, 0, 0), err
    assert "leaves the gaggle: caught SIGTERM" in err
    row = re.search(r"^\s*GET /\s+([\d,]+)\s", out, re.MULTILINE)
    assert row is not None, out
    assert int(row.group(1).replace(",", "")) == target.counts()["GET / 200"]  # nothing lost
