"""Gaggle mode with real processes and real sockets: a manager and worker processes, all on
127.0.0.1, against the counting target."""

from __future__ import annotations

import asyncio
import io
import json
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from rich.console import Console

from gaggle import Attack
from gaggle.cli.loader import load_tasksets
from gaggle.distributed.manager import Manager
from gaggle.distributed.rules import rules_hash, rules_json
from gaggle.options.role import Role, RoleKind
from tests.conftest import (
    Target,
    finish,
    free_port,
    kill_leftovers,
    run_gaggle,
    spawn_gaggle,
    wait_for_count,
    write_test,
)

TEST = """
from gaggle import TaskSet, task, constant

class Plain(TaskSet):
    wait_time = constant(0.05)

    @task
    async def index(self) -> None:
        await self.get("/")

    @task(on_stop=True)
    async def bye(self) -> None:
        await self.get("/landing")
"""


def write(tmp_path: Path, text: str = TEST, name: str = "loadtest.py") -> str:
    return write_test(tmp_path, text, name)


def start_worker(test: str, port: int, *extra: str) -> subprocess.Popen[str]:
    return spawn_gaggle("run", test, "--worker", "--manager-port", str(port), *extra)


def test_three_workers_count_exactly_what_the_target_served(target: Target, tmp_path: Path) -> None:
    test = write(tmp_path)
    tasksets = load_tasksets(test)
    port = free_port()
    options = {"host": target.url, "users": 10, "hatch_rate": 40, "run_time": 2,
               "no_reset_metrics": True}  # fmt: skip
    plan = Attack(*tasksets).plan(options, console=Console(file=io.StringIO(), width=140))
    role = Role(kind=RoleKind.MANAGER, expect_workers=3, bind_host="127.0.0.1", bind_port=port)
    logs = [tmp_path / f"requests-{i}.json" for i in range(3)]

    async def gaggle() -> tuple[object, list[tuple[int, str]]]:
        manager = asyncio.ensure_future(
            Manager(plan, role, rules_hash(tasksets), rules_json(tasksets)).run()
        )
        await asyncio.sleep(0.3)
        workers = [start_worker(test, port, "-m", str(log)) for log in logs]
        result = await manager
        return result, [await asyncio.to_thread(finish, w) for w in workers]

    result, exits = asyncio.run(gaggle())
    assert [code for code, _ in exits] == [0, 0, 0], exits
    served = target.counts()
    metrics = result.all_metrics()  # type: ignore[attr-defined]
    assert metrics.requests[("GET", "/")].count == served["GET / 200"] > 100
    assert metrics.requests[("GET", "/landing")].count == served["GET /landing 200"] == 10
    # 10 users over 3 workers: 4, 3, 3, numbered as one process would have numbered them.
    users = [sorted({json.loads(line)["user"] for line in log.read_text().splitlines()})
             for log in logs]  # fmt: skip
    assert sorted(users) == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]


def start_manager(
    test: str, target: Target, port: int, *extra: str, users: int = 4, metrics_port: int = 0
) -> subprocess.Popen[str]:
    """A manager for two workers on 127.0.0.1:port, with its metrics on a port of its own."""
    return spawn_gaggle(
        "run", test, "--manager", "--expect-workers", "2", "--manager-bind-host", "127.0.0.1",
        "--manager-bind-port", str(port), "--host", target.url, "-u", str(users), "-r", "100",
        "--metrics-bind", f"127.0.0.1:{metrics_port or free_port()}", *extra,
    )  # fmt: skip


def test_ctrl_c_on_a_worker_stops_the_whole_gaggle(target: Target, tmp_path: Path) -> None:
    test, port = write(tmp_path), free_port()
    manager = start_manager(test, target, port)
    time.sleep(0.5)
    workers = [start_worker(test, port) for _ in range(2)]
    wait_for_count(target, "GET / 200", 20)
    workers[0].send_signal(signal.SIGINT)
    exits = [finish(w) for w in workers]
    code, err = finish(manager)
    assert [c for c, _ in exits] == [0, 0], exits
    assert code == 0, err
    assert "worker 1" in err or "worker 2" in err
    assert target.counts()["GET /landing 200"] == 4  # every user, on both workers, said bye


def test_workers_stop_when_the_manager_dies(target: Target, tmp_path: Path) -> None:
    test, port = write(tmp_path), free_port()
    manager = start_manager(test, target, port)
    time.sleep(0.5)
    workers = [start_worker(test, port) for _ in range(2)]
    wait_for_count(target, "GET / 200", 20)
    manager.kill()
    manager.wait()
    stopped = time.monotonic()
    exits = [finish(w, timeout=10) for w in workers]
    assert time.monotonic() - stopped < 5
    for code, err in exits:
        assert code == 1
        assert "lost the manager" in err
    before = target.counts()["GET / 200"]
    time.sleep(0.5)
    assert target.counts()["GET / 200"] == before  # no load without the control plane


def test_a_worker_with_other_rules_is_refused(target: Target, tmp_path: Path) -> None:
    test, port = write(tmp_path), free_port()
    other = write(tmp_path, TEST.replace("@task\n", "@task(weight=2)\n"), "other.py")
    manager = start_manager(test, target, port, "-t", "1")
    try:
        time.sleep(0.5)
        code, err = finish(start_worker(other, port))
    finally:
        manager.kill()
        manager.wait()
    assert code == 2
    assert "refused" in err
    assert "the test rules differ" in err
    assert "weight: manager 1, worker 2" in err


def test_gaggle_flags_are_checked(tmp_path: Path) -> None:
    test = write(tmp_path)
    cases = [
        (["--manager"], "--manager needs --expect-workers"),
        (["--manager", "--expect-workers", "0"], "--expect-workers: '0'"),
        (["--worker", "--manager-port", "99999"], "--manager-port: '99999'"),
        (["--manager-port", "5115"], "it goes with --worker"),
        (["--manager", "--worker", "--expect-workers", "1"], "either --manager or --worker"),
    ]
    for args, words in cases:
        result = run_gaggle("run", test, "--host", "http://127.0.0.1:9", *args)
        assert result.returncode == 2, (args, result.stderr)
        assert words in result.stderr, (args, result.stderr)


def test_processes_runs_a_local_gaggle_with_exact_totals(target: Target, tmp_path: Path) -> None:
    log = tmp_path / "requests.json"
    result = run_gaggle(
        "run", write(tmp_path), "--processes", "2", "--host", target.url, "-u", "6", "-r", "60",
        "-t", "1.5", "--no-reset-metrics", "--only-summary", "-m", str(log),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    served = target.counts()
    row = re.search(r"^\s*GET /\s+([\d,]+)\s", result.stdout, re.MULTILINE)
    assert row is not None, result.stdout
    assert int(row.group(1).replace(",", "")) == served["GET / 200"] > 50
    per_worker = [tmp_path / "requests-1.json", tmp_path / "requests-2.json"]
    lines = [len(path.read_text().splitlines()) for path in per_worker]
    assert sum(lines) == served["GET / 200"] + served["GET /landing 200"]
    assert all(count > 0 for count in lines)


def test_a_killed_worker_is_counted_lost_and_the_rest_go_on(target: Target, tmp_path: Path) -> None:
    test, port, metrics_port = write(tmp_path), free_port(), free_port()
    manager = start_manager(
        test, target, port, "-t", "4", "--no-reset-metrics", "--only-summary",
        metrics_port=metrics_port,
    )  # fmt: skip
    workers = []
    try:
        time.sleep(0.5)
        workers = [start_worker(test, port) for _ in range(2)]
        wait_for_count(target, "GET / 200", 20)
        workers[0].kill()  # SIGKILL: no goodbye, no final delta
        workers[0].wait()
        killed_at = time.monotonic()
        lost = ""
        while time.monotonic() - killed_at < 3 and "gaggle_workers_lost_total 1.0" not in lost:
            time.sleep(0.1)
            url = f"http://127.0.0.1:{metrics_port}/metrics"
            with urllib.request.urlopen(url, timeout=5) as response:
                lost = response.read().decode()
        assert "gaggle_workers_lost_total 1.0" in lost  # noticed within 3 s
        assert "gaggle_workers_connected 1.0" in lost
        before = target.counts()["GET / 200"]
        wait_for_count(target, "GET / 200", before + 10)  # the other worker carries on
        out, err = manager.communicate(timeout=20)
        survivor, _ = finish(workers[1])
    finally:
        kill_leftovers(manager, *workers)
    assert manager.returncode == 0, err
    assert survivor == 0
    assert "lost worker" in err
    # What the killed worker did since its last delta is unknown, never guessed: the manager
    # counts less than the target served, by at most that worker's rate over the reported gap.
    gap = re.search(r"what it did in the ([\d.]+) s since its last delta is unknown", err)
    assert gap is not None, err
    row = re.search(r"^\s*GET /\s+([\d,]+)\s", out, re.MULTILINE)
    assert row is not None, out
    counted, served = int(row.group(1).replace(",", "")), target.counts()["GET / 200"]
    per_worker_rate = 2 / 0.05  # 2 users each, at most one request per 50 ms pause
    assert 0 <= served - counted <= per_worker_rate * (float(gap.group(1)) + 0.2), (served, counted)


def test_the_seeds_gaggle_example_runs_as_written(target: Target, tmp_path: Path) -> None:
    """Goose's README: `--manager --expect-workers 2 --host URL -v`, then two `--worker -v`; it
    runs until cancelled, and cancelling any process stops them all. Only the ports are ours (a
    test must not take 5115 and 9646); the manager listens on all interfaces, as in the seed."""
    test, port = write(tmp_path), free_port()
    manager = spawn_gaggle(
        "run", test, "--manager", "--expect-workers", "2", "--host", target.url, "-v",
        "--manager-bind-port", str(port), "--metrics-bind", f"127.0.0.1:{free_port()}",
    )  # fmt: skip
    time.sleep(0.5)
    workers = [start_worker(test, port, "-v") for _ in range(2)]
    wait_for_count(target, "GET / 200", 20)
    manager.send_signal(signal.SIGINT)
    code, err = finish(manager)
    exits = [finish(w) for w in workers]
    assert code == 0, err
    assert [c for c, _ in exits] == [0, 0], exits
    assert "without --gaggle-token" in err  # all interfaces, no token: the manager says so
    assert "joined the manager" in exits[0][1]
