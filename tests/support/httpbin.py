"""go-httpbin (github.com/mccutchen/go-httpbin/v2), a server nobody here wrote, as the HTTP
clients' referee, with a count of the requests it served taken from its own log.

The binary is built from its Go module with the test cluster's (``tests/cluster/binaries.py``,
``make cluster-binaries``) and cached outside the checkout. ``HttpBin`` starts it on 127.0.0.1
and a free port, and is ready once it has answered a probe of ours *and* logged it (another
program that took the port would answer, but not in our log). go-httpbin logs one JSON line per
request its handlers served, when the handler returns; that line is the count. A request that
Go's net/http refuses before any handler (a malformed request line: ``GET /a b HTTP/1.1``) is
answered 400 and not logged: not served, so a client that sends one is one count short.

    with HttpBin() as server:
        ...  # load server.url
        assert server.settle(at_least=n) == n
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from tests.cluster import binaries
from tests.conftest import free_port

PROBE = "gaggle-httpbin-probe"  # the User-Agent of our own probes, not counted as served
MAX_BODY = 8 * 1024 * 1024  # go-httpbin's cap on a response (1 MiB by default): /bytes/5000000
ATTEMPTS = 5  # ports tried: another process may take the free port before go-httpbin binds it
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy's answer


def binary() -> Path:
    """The cached go-httpbin, built first when missing (``make cluster-binaries`` builds it)."""
    return binaries.path("go-httpbin")


@dataclass(frozen=True)
class Served:
    """One request go-httpbin's log says it served."""

    status: int
    method: str
    uri: str  # as Go re-encodes it (RequestURI)


class HttpBin:
    """go-httpbin in a process of its own; a context manager (ready on entry, ended on exit)."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._served: list[Served] = []
        self._probes: set[str] = set()  # the probe tokens logged so far
        self._output: list[str] = []  # the lines that are not requests (startup, errors)
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._tokens = itertools.count()
        self.url = ""

    @property
    def served(self) -> int:
        with self._lock:
            return len(self._served)

    @property
    def requests(self) -> list[Served]:
        with self._lock:
            return list(self._served)

    def settle(self, at_least: int = 0, timeout: float = 15) -> int:
        """The count of requests served, once it has reached ``at_least`` (a handler logs when
        it returns, which may be after its client read the answer or gave up) and a probe sent
        after that has been logged (so that one more request, answered by then, is in it)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._served) < at_least:
                left = deadline - time.monotonic()
                if left <= 0 or not self._lock.wait(left):
                    break  # fewer than expected: the caller's comparison says so
        self._probe(deadline)
        return self.served

    def __enter__(self) -> HttpBin:
        failures: list[str] = []
        for _ in range(ATTEMPTS):
            if self._start(free_port()):
                return self
            failures.append("\n".join(self._output[-5:]))
            if "address already in use" not in failures[-1]:
                break
        raise RuntimeError(f"go-httpbin did not start:\n{failures[-1]}")

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop()

    def _start(self, port: int) -> bool:
        """Start on ``port``; True once it answered and logged a probe, False if it exited."""
        self._output.clear()
        self.url = f"http://127.0.0.1:{port}"
        self._process = subprocess.Popen(
            [
                str(binary()),
                *("-host", "127.0.0.1", "-port", str(port), "-log-format", "json"),
                *("-max-body-size", str(MAX_BODY)),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            encoding="utf-8",
            errors="replace",  # a query's bytes are logged as the client sent them
        )
        assert self._process.stderr is not None
        self._reader = threading.Thread(
            target=self._read, args=(self._process.stderr,), name="httpbin-log", daemon=True
        )
        self._reader.start()
        try:
            self._probe(time.monotonic() + 30)
        except RuntimeError:
            self._stop()
            return False
        return True

    def _probe(self, deadline: float) -> None:
        """Send a probe until it is answered and then logged by our process (a poll: no event
        says a port is listening); RuntimeError when the process has exited or time ran out."""
        token = f"{PROBE}-{next(self._tokens)}"
        request = urllib.request.Request(f"{self.url}/status/200", headers={"User-Agent": token})
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError("go-httpbin exited")
            try:
                with _DIRECT.open(request, timeout=2) as response:
                    response.read()
                break
            except (OSError, http.client.HTTPException):  # not listening yet, or not ours
                if time.monotonic() > deadline:
                    raise RuntimeError("go-httpbin did not answer") from None
                time.sleep(0.02)
        with self._lock:
            while token not in self._probes:
                left = deadline - time.monotonic()
                if left <= 0 or not self._lock.wait(left):
                    raise RuntimeError(f"go-httpbin answered but logged no {token}")

    def _read(self, log: IO[str]) -> None:
        for line in log:
            try:
                entry = json.loads(line)
            except ValueError:
                entry = {}
            with self._lock:
                if not isinstance(entry, dict) or "status" not in entry:
                    self._output.append(line.rstrip("\n"))
                elif str(entry.get("user_agent", "")).startswith(PROBE):
                    self._probes.add(entry["user_agent"])
                else:
                    self._served.append(Served(entry["status"], entry["method"], entry["uri"]))
                self._lock.notify_all()

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()  # go-httpbin's graceful shutdown ends in-flight handlers
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._reader is not None:
            self._reader.join(timeout=10)
        if process.stderr is not None:
            with contextlib.suppress(OSError):
                process.stderr.close()
