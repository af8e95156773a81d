"""One HTTP/1.1 keep-alive connection on the event loop, its responses read by httptools.

httptools wraps llhttp, Node's parser: its callbacks fill an ``Http1Answer`` as bytes arrive, and a
request's future resolves when the message is complete. One request at a time per connection
(no pipelining); the client keeps the pool. Failures raise the seam's ``NoResponse``.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import zlib

import httptools

from gaggle.http.seam import (
    PAYLOAD_INCOMPLETE,
    SERVER_DISCONNECTED,
    TIMEOUT,
    Exchange,
    Headers,
    NoResponse,
    connect_error,
    connection_error,
    dns_error,
    invalid_response,
    os_reason,
    tls_error,
)

_tls: ssl.SSLContext | None = None


def _tls_context() -> ssl.SSLContext:
    """One verifying context per process (the CA store is loaded once, not per user)."""
    global _tls
    if _tls is None:
        _tls = ssl.create_default_context()
    return _tls


async def connect(origin: tuple[str, str, int], deadline: float) -> Connection:
    scheme, host, port = origin
    loop = asyncio.get_running_loop()
    connection = Connection()
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
            body = _decoded(body, self.encoding)
        return Exchange(self.status, url, redirected, Headers(self.headers), body)


def _decoded(body: bytes, encoding: bytes) -> bytes:
    coding = encoding.strip().lower()
    try:
        if coding in (b"gzip", b"x-gzip"):
            return zlib.decompress(body, 16 + zlib.MAX_WBITS)
        if coding == b"deflate":
            try:
                return zlib.decompress(body)
            except zlib.error:
                return zlib.decompress(body, -zlib.MAX_WBITS)  # raw deflate, as some servers send
    except zlib.error:
        raise NoResponse(PAYLOAD_INCOMPLETE) from None
    return body


class _Unsolicited(Exception):
    """An answer began after the request's own was complete."""


_NO_ANSWER = Http1Answer()  # what an idle connection points at; never filled (see data_received)


class Connection(asyncio.Protocol):
    """One keep-alive connection: a request at a time, llhttp's callbacks fill ``_answer``."""

    __slots__ = ("_answer", "_head", "_parser", "_received", "_transport", "_waiter", "closed")

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[Http1Answer] | None = None
        self._answer = _NO_ANSWER
        self._head = False  # the request was HEAD: its response has no body whatever it says
        self._received = False
        self.closed = False

    async def roundtrip(self, request: bytes, head: bool, deadline: float) -> Http1Answer:
        transport = self._transport
        assert transport is not None
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Http1Answer] = loop.create_future()
        self._waiter = waiter
        self._answer, self._head, self._received = Http1Answer(), head, False
        timer = loop.call_at(deadline, self._time_out)
        transport.write(request)
        try:
            return await waiter
        except BaseException:
            self.close()  # cancelled mid-request: the connection's state is unknown
            raise
        finally:
            timer.cancel()
            self._waiter = None
            self._answer = _NO_ANSWER  # an idle user keeps no body alive

    def _time_out(self) -> None:
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
        self._received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(invalid_response("upgrade not supported"))
            self.close()
        except httptools.HttpParserError as error:  # _Unsolicited included: no waiter then
            self._fail(invalid_response(str(error)))
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
        elif not self._received:
            self._fail(SERVER_DISCONNECTED)
        else:
            self._fail(PAYLOAD_INCOMPLETE)

    def _reads_to_close(self) -> bool:
        return not any(
            name.lower() in (b"content-length", b"transfer-encoding")
            for name, _ in self._answer.headers
        )

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
        if status < 200:  # 1xx: an interim response, the real one follows
            self._answer = Http1Answer()
            return
        answer = self._answer
        answer.status = status
        if self._head:
            answer.keep_alive = self._parser.should_keep_alive()
            self._parser = httptools.HttpResponseParser(self)  # llhttp would wait for a body
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
