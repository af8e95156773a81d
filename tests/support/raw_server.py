"""A raw HTTP/1.1 server for the tests: each path answered with scripted bytes, every request
it served counted.

Written from the socket up, so that a test can send what no library here would write (a
``Set-Cookie`` a jar must ignore, a ``Location`` that is not a URL) and compare Gaggle's count
of requests with a count nobody else kept. It parses a request just enough to answer it (the
request line, the header lines, a ``Content-Length`` body), keeps what arrived, and writes the
bytes its path's script gives; a path without a script is a 404. A request counts as served
once its answer is written in full. It listens on 127.0.0.1 only, on threads of its own, so a
load test can run on the test's event loop:

    with RawServer({"/": answer(200, body=b"hi")}) as server:
        ...  # load server.url
        server.settle()
        assert server.served == …
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType

ENDS_HEAD = b"\r\n\r\n"
MAX_HEAD = 64 * 1024  # a longer head is not a request these tests send: the connection is cut


@dataclass(frozen=True)
class Received:
    """One request as it arrived: its method, target and header lines (names as sent)."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)

    def cookies(self) -> dict[str, str]:
        """The Cookie header's pairs (every Cookie line's, in order); empty without one."""
        pairs: dict[str, str] = {}
        for key, value in self.headers:
            if key.lower() == "cookie":
                for pair in value.split(";"):
                    name, _, cookie = pair.strip().partition("=")
                    pairs[name] = cookie
        return pairs


class Closing(bytes):
    """An answer after which the server closes the connection, whatever the bytes say (a head
    cut short, a body that runs to the end of the connection, no answer at all)."""


Script = bytes | Callable[[Received], bytes]  # the answer's bytes, fixed or made per request


def answer(status: int, *headers: str, body: bytes = b"", reason: str = "Scripted") -> bytes:
    """A response's bytes: the status line, ``headers`` as given ("Name: value"), a
    Content-Length for ``body`` and the body."""
    lines = [f"HTTP/1.1 {status} {reason}", *headers, f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


NOT_FOUND = answer(404, body=b"no script for this path")


class RawServer:
    """The server; a context manager (listening on entry, every connection closed on exit)."""

    def __init__(self, script: Mapping[str, Script]) -> None:
        self._script = dict(script)
        self._lock = threading.Condition()
        self._received: list[Received] = []
        self._served = 0
        self._busy = 0  # requests read and not yet answered (or dropped)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._connections: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._closing = False
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    @property
    def served(self) -> int:
        """Requests answered in full."""
        with self._lock:
            return self._served

    @property
    def received(self) -> list[Received]:
        """Every request read, in the order they arrived."""
        with self._lock:
            return list(self._received)

    def on(self, path: str) -> list[Received]:
        """The requests read for ``path``, in order."""
        return [request for request in self.received if request.path == path]

    def settle(self, timeout: float = 10) -> None:
        """Wait until every request read has been answered (or its connection is gone)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self._busy} request(s) still unanswered")
                self._lock.wait(left)

    def __enter__(self) -> RawServer:
        thread = threading.Thread(target=self._accept, name="raw-server", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        with self._lock:
            self._closing = True
            connections = list(self._connections)
        for connection in [self._listener, *connections]:  # shutdown wakes accept and recv
            with contextlib.suppress(OSError):  # already gone
                connection.shutdown(socket.SHUT_RDWR)
        for thread in list(self._threads):
            thread.join(timeout=10)
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return  # the listener was closed: the server is ending
            with self._lock:
                if self._closing:
                    connection.close()
                    return
                self._connections.add(connection)
                thread = threading.Thread(
                    target=self._serve, args=(connection,), name="raw-connection", daemon=True
                )
                self._threads.append(thread)
            thread.start()

    def _serve(self, connection: socket.socket) -> None:
        buffer = b""
        try:
            while True:
                while ENDS_HEAD not in buffer:
                    if len(buffer) > MAX_HEAD:
                        return
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, _, buffer = buffer.partition(ENDS_HEAD)
                request = _parse(head)
                length = int(request.header("Content-Length") or 0)
                while len(buffer) < length:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                buffer = buffer[length:]
                with self._lock:
                    self._received.append(request)
                    self._busy += 1
                try:
                    script = self._script.get(request.path, NOT_FOUND)
                    data = script(request) if callable(script) else script
                    connection.sendall(data)
                    with self._lock:
                        self._served += 1
                finally:
                    with self._lock:
                        self._busy -= 1
                        self._lock.notify_all()
                if _closes(data) or _closes_request(request):
                    return
        except OSError:
            return  # reset by the client, or the server is ending
        finally:
            with self._lock:
                self._connections.discard(connection)
            connection.close()


def _parse(head: bytes) -> Received:
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = [*lines[0].split(" ", 2), "", ""][:3]
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return Received(method, target, tuple(headers))


def _closes(data: bytes) -> bool:
    if isinstance(data, Closing):
        return True
    head = data.partition(ENDS_HEAD)[0].lower()
    return b"\r\nconnection: close" in head


def _closes_request(request: Received) -> bool:
    return (request.header("Connection") or "").lower() == "close"
