"""Shared fixtures: a real counting target server in a subprocess, and helpers to run Gaggle."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console

from gaggle.options.converters import HTTP_CLIENTS

ROOT = Path(__file__).resolve().parent.parent
CLUSTER_TESTS = ROOT / "tests" / "cluster"

# the local Kubernetes (tests/cluster/): cluster, namespace and kubectl fixtures
pytest_plugins = ["tests.cluster.fixtures", "tests.support.operator_harness"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of the one test cluster, and the cluster's own tests (the folder
    tests/cluster/), ``cluster``: ``make test`` runs them in one pytest process, in file order,
    beside another running the rest (tools/run_tests.py). One cluster per machine at a time:
    two interfere through host-level mount points."""
    for item in items:
        uses_cluster = "cluster" in getattr(item, "fixturenames", ())
        if uses_cluster or item.path.parent == CLUSTER_TESTS:
            item.add_marker(pytest.mark.cluster)


@dataclass
class Target:
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def other_origin(self) -> str:
        return f"http://127.0.0.2:{self.port}"

    def counts(self) -> dict[str, int]:
        with urllib.request.urlopen(f"{self.url}/__counts", timeout=5) as response:
            counts: dict[str, int] = json.load(response)
            return counts

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/__reset", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=5):
            pass


@contextlib.contextmanager
def target_process(folder: Path, *args: str) -> Iterator[int]:
    """tests/support/target.py in a subprocess (ARGS e.g. --tls-cert/--tls-key) until the block
    ends; yields its port."""
    port_file = folder / "port.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.target", "--port-file", str(port_file), *args],
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 15
        while not port_file.exists() or not port_file.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the test target did not start")
            time.sleep(0.05)
        yield int(json.loads(port_file.read_text())["port"])
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def target_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    with target_process(tmp_path_factory.mktemp("target")) as port:
        yield Target(port)


@pytest.fixture
def target(target_server: Target) -> Target:
    """The session's target with its counters zeroed for this test."""
    target_server.reset()
    return target_server


@pytest.fixture(params=HTTP_CLIENTS)
def http_client(request: pytest.FixtureRequest) -> str:
    """Each HTTP client in turn: the tests that take it are the clients' shared behaviour suite."""
    name: str = request.param
    return name


@pytest.fixture
def console() -> Console:
    """A console that writes into a buffer (read it with ``console.file.getvalue()``)."""
    return Console(file=io.StringIO(), width=140, highlight=False)


def gaggle_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "gaggle", *args]


def run_gaggle(
    *args: str, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``gaggle ARGS`` to the end; ``env`` replaces this process's environment when given."""
    env = {**(os.environ if env is None else env), "COLUMNS": "140"}
    return subprocess.run(
        gaggle_command(*args), capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT
    )


def write_test(tmp_path: Path, text: str, name: str = "loadtest.py") -> str:
    """Write a load test file for a test; returns its path."""
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def spawn_gaggle(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``gaggle ARGS`` in the background, its output captured (read it with ``finish``)."""
    return subprocess.Popen(
        gaggle_command(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env} if env else None,
    )


def scrape(port: int) -> str:
    """The text of a /metrics endpoint on 127.0.0.1:port."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text: str = response.read().decode()
        return text


def wait_for_metric(port: int, line: str, timeout: float) -> str:
    """Scrape until a line of /metrics starts with ``line``; the page that had it."""
    deadline = time.monotonic() + timeout
    page = "(no answer yet)"
    while True:
        try:
            page = scrape(port)
        except OSError as error:  # not listening yet: a loaded machine starts processes slowly
            page = f"(no answer: {error})"
        if any(row.startswith(line) for row in page.splitlines()):
            return page
        assert time.monotonic() < deadline, f"no {line!r} within {timeout} s:\n{page}"
        time.sleep(0.1)


def finish(process: subprocess.Popen[str], timeout: float = 20) -> tuple[int, str]:
    """Wait for a process we started; kill it (by its handle) if it overstays. (code, stderr)"""
    try:
        _, err = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, err


def kill_leftovers(*processes: subprocess.Popen[str] | None) -> None:
    """Kill (by handle: only our own) whichever of these processes still runs, and reap it."""
    for process in processes:
        if process is not None and process.poll() is None:
            process.kill()  # SIGKILL ends a SIGSTOPped process too
            process.wait()


def wait_for_count(target: Target, key: str, count: int, timeout: float = 15) -> None:
    """Until the target has served ``key`` (e.g. "GET / 200") at least ``count`` times."""
    deadline = time.monotonic() + timeout
    while target.counts().get(key, 0) < count:
        assert time.monotonic() < deadline, target.counts()
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
