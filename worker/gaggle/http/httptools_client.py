"""``HttpClient`` on the event loop's own sockets, with httptools (llhttp, Node's parser) reading
the responses: the leanest path from a task to the wire.

Why a third client: per request, the HTTP library is the cost (see the README's performance
section), and a load generator is made of requests. Here a request is one cached request line,
one ``transport.write`` and llhttp's callbacks; an idle user holds only its socket and a small
parser — no session, connector or client object per user as aiohttp and reqwest need (≈ 28 and
55 KB per idle user). It keeps the user-facing behaviour of the other two: each user has its
own keep-alive connections and cookie jar (``cookies``, made on the first Set-Cookie), redirects
are followed by ``redirects.follow``, TLS verifies against the system's CAs (``SSL_CERT_FILE``
included), gzip/deflate bodies are decoded, and failures get the seam's texts. What it does not
do: HTTP/2, proxies, sending `Expect: 100-continue`, streaming bodies.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

from gaggle.http.cookies import CookieJar
from gaggle.http.httptools_connection import Connection, Http1Answer, connect
from gaggle.http.redirects import REDIRECT_STATUSES, follow
from gaggle.http.seam import (
    ACCEPT_ENCODING,
    DEFAULT_TIMEOUT,
    SIZED_METHODS,
    Exchange,
    NoResponse,
    RequestOptions,
    encode_body,
    encode_params,
    invalid_url,
    wire_url,
)

USER_AGENT = "gaggle-httptools"
_Origin = tuple[str, str, int]  # scheme, host, port: one keep-alive pool each
_NO_NAMES: frozenset[str] = frozenset()  # the header names of a task that sets none


class _Target(NamedTuple):
    """What a URL means on the wire; cached, since a load test sends the same URLs again."""

    origin: _Origin
    line: bytes  # the request line after its method: " /path?query HTTP/1.1\r\n"
    defaults: tuple[tuple[str, bytes], ...]  # (lower-case name, header line): Host, User-Agent…
    head: bytes  # line and every default: the whole head when a task sets no header of its own


@lru_cache(maxsize=4096)
def _target(url: str) -> _Target:
    wire = wire_url(url)
    try:
        parts = urlsplit(wire)
    except ValueError:  # an unclosed [IPv6] host
        raise NoResponse(invalid_url(url)) from None
    scheme, host = parts.scheme, parts.hostname
    if scheme not in ("http", "https") or not host:
        raise NoResponse(invalid_url(url))
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise NoResponse(invalid_url(url)) from None
    netloc = parts.netloc.rpartition("@")[2]
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    defaults = [("Host", netloc), ("User-Agent", USER_AGENT), ("Accept", "*/*")]
    defaults.append(("Accept-Encoding", ACCEPT_ENCODING))
    if parts.username is not None:
        secret = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        defaults.append(("Authorization", f"Basic {base64.b64encode(secret.encode()).decode()}"))
    try:
        line = f" {path} HTTP/1.1\r\n".encode("ascii")
        lines = tuple(
            (name.lower(), f"{name}: {value}\r\n".encode("ascii")) for name, value in defaults
        )
    except UnicodeEncodeError:
        raise NoResponse(invalid_url(url)) from None
    return _Target((scheme, host, port), line, lines, line + b"".join(v for _, v in lines))


class HttptoolsClient:
    """One user's connections (a keep-alive pool per origin) and cookie jar, made when needed."""

    __slots__ = ("_cookies", "_idle")

    def __init__(self) -> None:
        self._idle: dict[_Origin, list[Connection]] = {}
        self._cookies: CookieJar | None = None

    async def send(self, method: str, url: str, options: RequestOptions) -> Exchange:
        target = wire_url(encode_params(url, options.params))
        try:
            answer = await self._exchange(method, target, options, True, options.timeout)
            if options.allow_redirects and answer.status in REDIRECT_STATUSES:
                return await follow(self._exchange, method, url, target, options, answer)
            return answer.finish(target, False)
        except NoResponse as failure:
            return Exchange(status=0, final_url=url, error=str(failure))

    async def _exchange(
        self, method: str, url: str, options: RequestOptions, body: bool, timeout: float | None
    ) -> Http1Answer:
        target = _target(url)
        payload, content_type = encode_body(options) if body else (b"", "")
        sized = content_type or method in SIZED_METHODS  # a body, or a method that expects one
        headers = options.headers
        if headers:  # the task's own Host, User-Agent, Accept… replace the defaults
            request = [method.encode("ascii"), target.line]
            names: AbstractSet[str] = {name.lower() for name in headers}
            request.extend(line for name, line in target.defaults if name not in names)
            content_type = _append_headers(request, headers, content_type)
        else:
            request, names = [method.encode("ascii"), target.head], _NO_NAMES
        if content_type:
            request.append(b"Content-Type: %s\r\n" % content_type.encode())
        if self._cookies is not None and "cookie" not in names:  # a task's Cookie wins, as reqwest
            cookie = self._cookies.header(url)
            if cookie:
                request.append(f"Cookie: {cookie}\r\n".encode("latin-1"))
        if sized:
            request.append(b"Content-Length: %d\r\n" % len(payload))
        request.append(b"\r\n")
        if payload:
            request.append(payload)
        seconds = DEFAULT_TIMEOUT if timeout is None else timeout
        connection, deadline = await self._connection(target.origin, seconds)
        answer = await connection.roundtrip(b"".join(request), method == "HEAD", deadline)
        if answer.keep_alive and not connection.closed:
            self._idle.setdefault(target.origin, []).append(connection)
        if answer.set_cookies:
            jar = self._cookies = self._cookies or CookieJar()
            jar.receive(answer.set_cookies, url)
        return answer

    async def _connection(self, origin: _Origin, seconds: float) -> tuple[Connection, float]:
        """A kept-alive connection or a new one, and the deadline of a request on it (a new
        one's connect included). The loop is the connection's: on Python 3.11,
        ``asyncio.get_running_loop()`` is a getpid() system call (~2 % of a request's CPU)."""
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            if not connection.closed:
                return connection, connection.loop.time() + seconds
        deadline = asyncio.get_running_loop().time() + seconds
        return await connect(origin, deadline), deadline

    async def close(self) -> None:
        for pool in self._idle.values():
            for connection in pool:
                connection.close()
        self._idle.clear()


def _append_headers(request: list[bytes], headers: Mapping[str, str], content_type: str) -> str:
    """The task's headers onto ``request``; the default Content-Type unless they set one."""
    for name, value in headers.items():
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
            raise ValueError(f"header {name!r}: line breaks are not allowed in HTTP headers")
        request.append(f"{name}: {value}\r\n".encode("latin-1"))
        if content_type and name.lower() == "content-type":
            content_type = ""
    return content_type
