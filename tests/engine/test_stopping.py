"""Stopping is bounded (review D7): after -t, the first Ctrl-C, SIGTERM or /api/stop, requests in
flight and running tasks get --stop-timeout, then are cancelled and counted abandoned (not
failures); a second Ctrl-C ends the process with 130 even while user code holds the event loop.

Real processes of the CLI against a real server on 127.0.0.1 that accepts and reads every
request and never answers one. No test asserts a time: a run that would wait for its requests
is caught by a process deadline well below the 60 s request timeout."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from types import TracebackType

import pytest

from gaggle.http import DEFAULT_TIMEOUT
from gaggle.metrics import Metrics, Source
from gaggle.options.converters import HTTP_CLIENTS
from gaggle.run import RunResult
from gaggle.web.prometheus import MetricsPage, summary
from gaggle_operator import status
from gaggle_operator.spec import SpecError, parse_spec
from tests.conftest import finish, free_port, kill_leftovers, run_gaggle, spawn_gaggle, write_test

# A process that waited for its requests would run past DEFAULT_TIMEOUT (60 s): its deadline is
# well below that, and far above what a bounded stop takes even on a loaded machine.
BEFORE_THE_REQUEST_TIMEOUT = DEFAULT_TIMEOUT - 20

HANGING = """
from gaggle import TaskSet, task, constant

class Hanging(TaskSet):
    wait_time = constant(0.1)

    @task
    async def index(self) -> None:
        await self.get("/")
"""


class SilentServer:
    """Accepts connections on 127.0.0.1, reads what arrives, counts the request heads, and never
    answers (a context manager: every socket closed on exit)."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port: int = self._listener.getsockname()[1]
        self._heads = 0
        self._changed = threading.Condition()
        self._connections: list[socket.socket] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> SilentServer:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._listener.close()
        with self._changed:
            for connection in self._connections:
                connection.close()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:  # closed: the test is over
                return
            with self._changed:
                self._connections.append(connection)
            threading.Thread(target=self._read, args=(connection,), daemon=True).start()

    def _read(self, connection: socket.socket) -> None:
        seen = b""
        while True:
            try:
                data = connection.recv(65536)
            except OSError:
                return
            if not data:
                return
            seen += data
            with self._changed:  # bodyless GETs: a head ends each request
                self._heads += seen.count(b"\r\n\r\n")
                seen = seen.rpartition(b"\r\n\r\n")[2]
                self._changed.notify_all()

    @property
    def received(self) -> int:
        with self._changed:
            return self._heads

    def wait_for(self, requests: int, timeout: float = 20) -> None:
        with self._changed:
            arrived = self._changed.wait_for(lambda: self._heads >= requests, timeout)
        assert arrived, f"{self._heads} of {requests} requests arrived"


def wait_for_text(
    path: Path, text: str, process: subprocess.Popen[str], timeout: float = 20
) -> None:
    """Until the file at ``path`` holds ``text`` (the process writes it)."""
    deadline = time.monotonic() + timeout
    while not (path.exists() and text in path.read_text()):
        assert process.poll() is None, f"gaggle ended ({process.returncode}) before {text!r}"
        assert time.monotonic() < deadline, f"no {text!r} in {path} within {timeout} s"
        time.sleep(0.05)


def abandoned_in(report: Path) -> dict[str, int]:
    counts: dict[str, int] = json.loads(report.read_text())["abandoned"]
    return counts


@pytest.mark.parametrize(
    ("client", "stop_timeout"),
    [*((client, "1") for client in HTTP_CLIENTS), ("httptools", "0")],
)
def test_d7_run_time_ends_a_run_whose_requests_never_get_an_answer(
    tmp_path: Path, client: str, stop_timeout: str
) -> None:
    report = tmp_path / "report.json"
    with SilentServer() as server:
        result = run_gaggle(
            "run", write_test(tmp_path, HANGING), "--host", server.url, "-u", "2", "-r", "100",
            "-t", "1", "--stop-timeout", stop_timeout, "--http-client", client, "-R", str(report),
            timeout=BEFORE_THE_REQUEST_TIMEOUT,
        )  # fmt: skip
        sent = server.received
    assert result.returncode == 0, result.stderr
    assert sent == 2  # one request per user, each in flight when the stop came
    assert abandoned_in(report) == {"requests": 2, "tasks": 2}
    data = json.loads(report.read_text())
    assert (data["requests_total"]["count"], data["requests_total"]["fails"]) == (0, 0)
    assert data["errors"]["distinct"] == 0  # abandoned, not failed
    assert "Abandoned at the stop: 2 request(s) in flight and 2 task(s)" in result.stdout


def test_d7_the_default_stop_timeout_bounds_the_stop(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    with SilentServer() as server:
        result = run_gaggle(
            "run", write_test(tmp_path, HANGING), "--host", server.url, "-u", "1", "-t", "1",
            "-R", str(report), timeout=BEFORE_THE_REQUEST_TIMEOUT,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert abandoned_in(report) == {"requests": 1, "tasks": 1}


def api_stop(port: int) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/stop",
        data=b"{}",
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10):
        pass


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "/api/stop"])
def test_d7_a_signal_or_the_api_stops_within_the_stop_timeout(tmp_path: Path, how: str) -> None:
    port = free_port()
    with SilentServer() as server:
        process = spawn_gaggle(
            "run", write_test(tmp_path, HANGING), "--host", server.url, "-u", "2", "-r", "100",
            "--stop-timeout", "1", "--metrics-bind", f"127.0.0.1:{port}",
        )  # fmt: skip
        try:
            server.wait_for(2)  # both users wait for an answer that never comes
            if how == "/api/stop":
                api_stop(port)
            else:
                process.send_signal(getattr(signal, how))
            out, err = process.communicate(timeout=BEFORE_THE_REQUEST_TIMEOUT)
        finally:
            kill_leftovers(process)
    assert process.returncode == 0, err
    assert "Abandoned at the stop: 2 request(s) in flight and 2 task(s)" in out


SLEEPING_ON_START = """
import asyncio
from gaggle import TaskSet, task

class Sleeper(TaskSet):
    @task(on_start=True)
    async def forever(self) -> None:
        with open(MARKS, "a") as marks:
            marks.write("in on_start\\n")
        while True:
            await asyncio.sleep(0.05)

    @task
    async def index(self) -> None:
        await self.get("/")
"""


@pytest.mark.parametrize("how", ["-t", "SIGINT"])
def test_d7_an_on_start_looping_on_sleep_does_not_keep_the_run_alive(
    tmp_path: Path, how: str
) -> None:
    marks, report = tmp_path / "marks.txt", tmp_path / "report.json"
    test = write_test(tmp_path, f"MARKS = {str(marks)!r}\n{SLEEPING_ON_START}")
    args = ["--host", "http://127.0.0.1:9", "-u", "2", "-r", "100", "--stop-timeout", "1"]
    ends = ["-t", "1"] if how == "-t" else []
    process = spawn_gaggle("run", test, *args, *ends, "-R", str(report))
    try:
        if how == "SIGINT":
            deadline = time.monotonic() + 20
            while not marks.exists() or marks.read_text().count("in on_start") < 2:
                assert process.poll() is None, process.returncode
                assert time.monotonic() < deadline, "the users did not reach on_start"
                time.sleep(0.05)
            process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=BEFORE_THE_REQUEST_TIMEOUT)
    finally:
        kill_leftovers(process)
    assert process.returncode == 0, err
    assert abandoned_in(report) == {"requests": 0, "tasks": 2}
    assert "Abandoned at the stop: 0 request(s) in flight and 2 task(s)" in out


HOLDING_THE_LOOP = """
import time
from gaggle import TaskSet, task

class Holder(TaskSet):
    @task
    async def hold(self) -> None:
        with open(MARKS, "a") as marks:
            marks.write("holding the loop\\n")
        HOLD
"""


@pytest.mark.parametrize("hold", ["while True:\n            pass", "time.sleep(600)"])
def test_d7_a_second_ctrl_c_exits_130_while_a_task_holds_the_loop(
    tmp_path: Path, hold: str
) -> None:
    marks, log = tmp_path / "marks.txt", tmp_path / "gaggle.log"
    text = f"MARKS = {str(marks)!r}\n{HOLDING_THE_LOOP.replace('HOLD', hold)}"
    process = spawn_gaggle(
        "run", write_test(tmp_path, text), "--host", "http://127.0.0.1:9", "-u", "1",
        "-L", str(log),
    )  # fmt: skip
    try:
        wait_for_text(marks, "holding the loop", process)
        process.send_signal(signal.SIGINT)
        wait_for_text(log, "caught SIGINT, stopping", process)  # heard, though the loop is held
        assert process.poll() is None  # the first Ctrl-C only asks the run to stop
        process.send_signal(signal.SIGINT)
        code, err = finish(process, timeout=BEFORE_THE_REQUEST_TIMEOUT)
    finally:
        kill_leftovers(process)
    assert code == 130, err
    assert "exiting now" in err


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("-1", "a number of seconds ≥ 0"),
        ("2h", "≤ 3,600 s"),
        ("soon", "a number of seconds ≥ 0"),
        ("nan", "a number of seconds ≥ 0"),
    ],
)
def test_d7_a_bad_stop_timeout_is_one_line_naming_the_flag(
    tmp_path: Path, value: str, words: str
) -> None:
    result = run_gaggle(
        "run", write_test(tmp_path, HANGING), "--host", "http://127.0.0.1:9",
        f"--stop-timeout={value}",
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith(f"gaggle: error: --stop-timeout: {value!r} is not allowed"), message
    assert words in message, message


def test_d7_a_loadtest_spec_sets_the_stop_timeout() -> None:
    spec = {
        "script": {"inline": "x = 1"},
        "host": "http://target:8080",
        "users": 2,
        "runTime": "1m",
        "image": "gaggle:test",
    }
    assert "--stop-timeout" not in parse_spec(spec).gaggle_args()
    args = parse_spec({**spec, "stopTimeout": "30s"}).gaggle_args()
    assert args[args.index("--stop-timeout") + 1] == "30"
    with pytest.raises(SpecError, match=r"spec\.stopTimeout: '2h' is not allowed"):
        parse_spec({**spec, "stopTimeout": "2h"})


def test_d7_abandoned_counts_reach_prometheus_the_summary_and_a_loadtests_status() -> None:
    metrics = Metrics()
    metrics.abandoned_requests, metrics.abandoned_tasks = 2, 3
    source = Source(metrics=lambda: metrics, users=lambda: 0)
    page = MetricsPage(source).render().decode()
    assert 'gaggle_abandoned_total{what="request"} 2.0' in page
    assert 'gaggle_abandoned_total{what="task"} 3.0' in page
    assert summary(source)["abandoned"] == {"requests": 2, "tasks": 3}
    assert Metrics.from_dict(metrics.to_dict()) == metrics
    assert status.live(metrics, metrics.aggregated_requests(), 0, 0.0)["abandoned"] == 2
    result = RunResult(metrics=metrics, duration=1.0, users=2, stopped_by="run time over")
    assert status.summary(result)["abandoned"] == {"requests": 2, "tasks": 3}
