"""/metrics and /summary against a real run: scraped numbers equal what the target served."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import (
    ROOT,
    Target,
    finish,
    free_port,
    gaggle_command,
    kill_leftovers,
    spawn_gaggle,
    wait_for_count,
)
from tests.gaggle_mode.test_mode import start_manager, start_worker, write

QUIET = """
from gaggle import TaskSet, task, constant

class Visitor(TaskSet):
    wait_time = constant(60)

    @task(on_start=True)
    async def arrive(self) -> None:
        await self.get("/a")
        await self.get("/status/500")

    @task
    async def idle(self) -> None:  # after a 60 s pause: never within these tests
        await self.get("/b")
"""


def scrape(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        text: str = response.read().decode()
        return text


def samples(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(scrape(port, "/metrics")):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def settle(target: Target, key: str, count: int) -> None:
    wait_for_count(target, key, count)
    time.sleep(0.3)  # all users are in their 60 s pause: nothing more is sent


def check(port: int, target: Target, users: int, workers: tuple[int, int] | None) -> None:
    found = samples(port)
    served = target.counts()
    get = (("method", "GET"), ("name", "/a"), ("status", "200"))
    assert found[("gaggle_requests_total", get)] == served["GET /a 200"]
    fails = (("method", "GET"), ("name", "/status/500"))
    assert found[("gaggle_request_failures_total", fails)] == served["GET /status/500 500"]
    count = (("method", "GET"), ("name", "/a"))
    served_a = served["GET /a 200"]
    assert found[("gaggle_response_time_seconds_count", count)] == served_a
    for le in ("+Inf", "60.0"):
        bucket = tuple(sorted((*count, ("le", le))))
        assert found[("gaggle_response_time_seconds_bucket", bucket)] == served_a
    assert found[("gaggle_users", ())] == users
    if workers is not None:
        assert found[("gaggle_workers_connected", ())] == workers[0]
        assert found[("gaggle_workers_lost_total", ())] == workers[1]
        lags = [v for (name, _), v in found.items() if name == "gaggle_worker_loop_lag_seconds"]
        assert len(lags) == workers[0]
        assert all(0 <= lag < 0.5 for lag in lags)  # idle workers: their loops run on time
    assert '"requests"' in scrape(port, "/summary")


def test_standalone_metrics_bind(target: Target, tmp_path: Path) -> None:
    port = free_port()
    process = spawn_gaggle(
        "run", write(tmp_path, QUIET), "--host", target.url, "-u", "5", "-r", "100",
        "--metrics-bind", f"127.0.0.1:{port}",
    )  # fmt: skip
    try:
        settle(target, "GET /status/500 500", 5)
        check(port, target, users=5, workers=None)
        process.terminate()
        code, err = finish(process)
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 0, err


def test_metrics_bind_on_every_address_answers_ipv4_and_ipv6(
    target: Target, tmp_path: Path
) -> None:
    """`[::]:PORT` is every address of both families on one port (an IPv6-only cluster reaches
    a pod on v6; finding 22), as Go reads it: not IPv6 alone, as a plain bind of `::` would be."""
    port = free_port()
    process = spawn_gaggle(
        "run", write(tmp_path, QUIET), "--host", target.url, "-u", "1", "-r", "100",
        "--metrics-bind", f"[::]:{port}",
    )  # fmt: skip
    try:
        settle(target, "GET /status/500 500", 1)
        for host in ("127.0.0.1", "[::1]"):
            with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as page:
                assert b"gaggle_requests_total" in page.read(), host
        process.terminate()
        code, err = finish(process)
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 0, err
    assert f"metrics on http://[::]:{port}/metrics" in err


def test_manager_metrics_cover_every_worker(target: Target, tmp_path: Path) -> None:
    test, grpc_port, metrics_port = write(tmp_path, QUIET), free_port(), free_port()
    manager = start_manager(test, target, grpc_port, users=6, metrics_port=metrics_port)
    workers = []
    try:
        time.sleep(0.5)
        workers = [start_worker(test, grpc_port) for _ in range(2)]
        settle(target, "GET /status/500 500", 6)
        time.sleep(1.2)  # one delta interval: the last requests reach the manager
        check(metrics_port, target, users=6, workers=(2, 0))
        manager.terminate()
        assert [finish(w)[0] for w in workers] == [0, 0]
        code, err = finish(manager)
    finally:
        kill_leftovers(manager, *workers)
    assert code == 0, err


def test_a_metrics_port_in_use_is_bad_input(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            gaggle_command(
                "run",
                write(tmp_path, QUIET),
                "--host",
                "http://127.0.0.1:9",
                "-t",
                "1",
                "--metrics-bind",
                f"127.0.0.1:{port}",
            ),
            capture_output=True,
            text=True,
            timeout=30,
            cwd=ROOT,
        )
    assert result.returncode == 2, result.stderr
    assert f"--metrics-bind: '127.0.0.1:{port}' is not allowed; cannot listen there" in (
        result.stderr
    )
