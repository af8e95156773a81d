"""One HTTP/1.1 keep-alive connection on the event loop, its responses read by httptools.

httptools wraps llhttp, Node's parser: its callbacks fill an ``Http1Answer`` as bytes arrive, and a
request's future resolves when the message is complete. One request at a time per connection
(no pipelining); the client keeps the pool. Failures raise the seam's ``NoResponse``.

llhttp is strict, and is let read what the seam accepts (its docstring): a bare LF as a line's
end, and an obs-folded head — read again from its first byte by a lenient parser, so that other
faults llhttp's lenient mode would let through (control characters in a value) stay refused.
The limits it does not keep (``MAX_HEADERS``, ``MAX_HEAD_BYTES``) are kept here.
"""

from __future__ import annotations

import asyncio
import math
import socket
import ssl
import weakref

import httptools

from gaggle.http.failures import from_llhttp
from gaggle.http.seam import (
    HEAD_TOO_LARGE,
    MAX_HEAD_BYTES,
    MAX_HEADERS,
    PAYLOAD_INCOMPLETE,
    SERVER_DISCONNECTED,
    TIMEOUT,
    Exchange,
    Headers,
    NoResponse,
    connect_error,
    connection_error,
    decode_body,
    dns_error,
    os_reason,
    tls_error,
)

_OBS_FOLD = "Unexpected whitespace after header value"  # llhttp's reason for an obs-fold

_tls: ssl.SSLContext | None = None


def _tls_context() -> ssl.SSLContext:
    """One verifying context per process (the CA store is loaded once, not per user)."""
    global _tls
    if _tls is None:
        _tls = ssl.create_default_context()
    return _tls


class InFlight:
    """The requests in flight on one event loop, and the one timer that looks at their deadlines.

    A timer per request cost a handle and two heap operations in the loop each time; a timer
    per connection kept, on an idle one, a handle of ~0.5 KB per user (5 MiB of 10,000 idle
    users' peak). Here a request costs a set's add and discard. The timer is set for the soonest
    deadline in flight when it last looked (or a sooner one added since); when it fires it times
    out what is due and is set again for the soonest left, so every request is looked at by its
    deadline and, since requests end long before it, the timer fires about once a timeout.
    """

    __slots__ = ("_at", "_connections", "_loop", "_timer")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # a proxy: the registry's value must not keep its key, the loop, alive once it is done
        self._loop = weakref.proxy(loop)
        self._connections: set[Connection] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._at = math.inf  # when the timer fires

    def add(self, connection: Connection, deadline: float) -> None:
        self._connections.add(connection)
        if deadline < self._at:
            if self._timer is not None:
                self._timer.cancel()
            self._at, self._timer = deadline, self._loop.call_at(deadline, self._look)

    def discard(self, connection: Connection) -> None:
        self._connections.discard(connection)

    def _look(self) -> None:
        self._timer, self._at = None, math.inf
        now, soonest = self._loop.time(), math.inf
        for connection in list(self._connections):
            if connection.deadline <= now:
                self._connections.discard(connection)
                connection.time_out()
            else:
                soonest = min(soonest, connection.deadline)
        if soonest < math.inf:
            self._at, self._timer = soonest, self._loop.call_at(soonest, self._look)


_in_flight: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, InFlight] = (
    weakref.WeakKeyDictionary()
)


def in_flight_on(loop: asyncio.AbstractEventLoop) -> InFlight:
    found = _in_flight.get(loop)
    if found is None:
        found = _in_flight[loop] = InFlight(loop)
    return found


async def connect(origin: tuple[str, str, int], deadline: float) -> Connection:
    scheme, host, port = origin
    loop = asyncio.get_running_loop()
    connection = Connection(loop, in_flight_on(loop))
    tls = _tls_context() if scheme == "https" else None
    try:
        async with asyncio.timeout_at(deadline):
            await loop.create_connection(lambda: connection, host, port, ssl=tls)
    except TimeoutError:
        raise NoResponse(TIMEOUT) from None
    except socket.gaierror:
        raise NoResponse(dns_error(host)) from None
    except ssl.SSLCertVerificationError:
        raise NoResponse(tls_error(host, port)) from None
    except OSError as error:  # ConnectionRefusedError among them
        raise NoResponse(connect_error(host, port, os_reason(error))) from None
    return connection


class Http1Answer:
    """A complete response: status, raw headers and body chunks (``redirects.HopAnswer``)."""

    __slots__ = ("body", "encoding", "headers", "keep_alive", "set_cookies", "status")

    def __init__(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.encoding = b""  # Content-Encoding
        self.set_cookies: list[str] = []
        self.keep_alive = False

    def location(self) -> str | None:
        for name, value in self.headers:
            if name.lower() == b"location":
                return value.decode("latin-1")
        return None

    async def exchange(self, url: str, redirected: bool) -> Exchange:
        return self.finish(url, redirected)

    def finish(self, url: str, redirected: bool) -> Exchange:
        body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        if self.encoding and body:
            body = decode_body(body, self.encoding.decode("latin-1"))
        return Exchange(self.status, url, redirected, Headers(self.headers), body)


class _Unsolicited(Exception):
    """An answer began after the request's own was complete."""


class _TooManyHeaders(Exception):
    """More header lines than ``MAX_HEADERS``."""


def _parser(protocol: Connection, folds: bool) -> httptools.HttpResponseParser:
    """A parser that takes a bare LF for CRLF (RFC 9112 §2.2), and obs-folds when ``folds``."""
    parser = httptools.HttpResponseParser(protocol)
    parser.set_dangerous_leniencies(lenient_optional_cr_before_lf=True, lenient_headers=folds)
    return parser


_NO_ANSWER = Http1Answer()  # what an idle connection points at; never filled (see data_received)


class Connection(asyncio.Protocol):
    """One keep-alive connection: a request at a time, llhttp's callbacks fill ``_answer``."""

    __slots__ = (
        "_answer",
        "_folds",
        "_head",
        "_in_flight",
        "_parser",
        "_partial",
        "_transport",
        "_waiter",
        "closed",
        "deadline",
        "loop",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, in_flight: InFlight) -> None:
        self._folds = False  # the server folds header lines: a lenient parser reads them
        self._parser = _parser(self, folds=False)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[Http1Answer] | None = None
        self._answer = _NO_ANSWER
        self._head = False  # the request was HEAD: its response has no body whatever it says
        self._partial: bytes | bytearray = b""  # an answer's bytes while its head is incomplete
        self._in_flight = in_flight  # its loop's: what looks at the deadline of its request
        self.loop = loop
        self.deadline = 0.0  # the request in flight's, in loop.time()
        self.closed = False

    async def roundtrip(self, request: bytes, head: bool, deadline: float) -> Http1Answer:
        transport = self._transport
        assert transport is not None
        waiter: asyncio.Future[Http1Answer] = self.loop.create_future()
        self._waiter = waiter
        self._answer, self._head, self._partial = Http1Answer(), head, b""
        self.deadline = deadline
        in_flight = self._in_flight
        in_flight.add(self, deadline)
        transport.write(request)
        try:
            return await waiter
        except BaseException:
            self.close()  # cancelled mid-request: the connection's state is unknown
            raise
        finally:
            in_flight.discard(self)
            self._waiter = None
            self._answer = _NO_ANSWER  # an idle user keeps no body alive

    def time_out(self) -> None:
        """Its deadline passed with the request in flight (``InFlight`` looked)."""
        self._fail(TIMEOUT)
        self.close()

    def _fail(self, text: str) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(NoResponse(text))

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.abort()

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:  # bytes nobody asked for: the connection cannot be trusted
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # after a 101, the answer (or an unsolicited one)
            self.close()
            return
        except httptools.HttpParserError as error:
            self._refused(error, data)
            return
        if not self._answer.status:  # the head is not complete: kept, and kept within bounds
            if self._partial:
                self._partial += data  # a bytearray: extended in place
            else:
                self._partial = bytearray(data)
            if len(self._partial) > MAX_HEAD_BYTES:
                self._fail(HEAD_TOO_LARGE)
                self.close()

    def _refused(self, error: httptools.HttpParserError, data: bytes) -> None:
        """llhttp stopped at ``error``: an obs-folded head is read again by a lenient parser,
        anything else fails the request."""
        if str(error) == _OBS_FOLD and not self._folds and not self._answer.status:
            self._folds = True
            self._parser = _parser(self, folds=True)
            self._answer, data = Http1Answer(), bytes(self._partial) + data
            self._partial = b""
            self.data_received(data)
            return
        context = error.__context__
        if isinstance(context, _TooManyHeaders):
            self._fail(HEAD_TOO_LARGE)
        elif not isinstance(context, _Unsolicited):  # _Unsolicited: no waiter to tell
            self._fail(from_llhttp(str(error)))
        self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        answer = self._answer
        if answer.status and not answer.keep_alive and self._reads_to_close():
            waiter.set_result(answer)  # a body delimited by the end of the connection
        elif isinstance(exc, OSError) and exc.strerror:
            self._fail(connection_error(exc.strerror))
        elif not answer.status:  # nothing, or a head cut short
            self._fail(SERVER_DISCONNECTED)
        else:
            self._fail(PAYLOAD_INCOMPLETE)

    def _reads_to_close(self) -> bool:
        """No Content-Length, and no Transfer-Encoding ending in chunked (RFC 9112 §6.3)."""
        for name, value in self._answer.headers:
            lower = name.lower()
            if lower == b"content-length":
                return False
            if lower == b"transfer-encoding":
                return value.rpartition(b",")[2].strip().lower() != b"chunked"
        return True

    # llhttp callbacks
    def on_message_begin(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            raise _Unsolicited  # a second answer to one request: stop reading here

    def on_header(self, name: bytes, value: bytes) -> None:
        answer = self._answer
        answer.headers.append((name, value))
        lower = name.lower()
        if lower == b"set-cookie":
            answer.set_cookies.append(value.decode("latin-1"))
        elif lower == b"content-encoding":
            answer.encoding = value

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200 and status != 101:  # 1xx: an interim response, the real one follows
            self._answer = Http1Answer()
            return
        answer = self._answer
        if len(answer.headers) > MAX_HEADERS:
            raise _TooManyHeaders
        answer.status = status  # a 101 too: llhttp stops after it, and the connection is closed
        if self._head:
            answer.keep_alive = self._parser.should_keep_alive()
            self._parser = _parser(self, self._folds)  # llhttp would wait for a body
            self._resolve(answer)

    def on_body(self, body: bytes) -> None:
        self._answer.body.append(body)

    def on_message_complete(self) -> None:
        answer = self._answer
        if answer.status == 0 or self._head:
            return
        answer.keep_alive = self._parser.should_keep_alive()
        self._resolve(answer)

    def _resolve(self, answer: Http1Answer) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(answer)
        if not answer.keep_alive:
            self.closed = True
            if self._transport is not None:
                self._transport.close()
