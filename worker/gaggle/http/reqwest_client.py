"""``HttpClient`` on pyreqwest: Rust's reqwest (Goose's HTTP stack) driven from the event loop.

Per request it costs a fraction of aiohttp's CPU, which is what a load generator is made of. Each
user has its own cookie jar and keep-alive connections, as with aiohttp. Two reqwest clients share
the user's jar: ``_plain`` for http:// URLs and ``_tls`` for the rest. Why two: a reqwest client
that verifies certificates loads the system's CA store when it is built (≈5 ms and ≈110 KB per
client in pyreqwest 0.15, which cannot share one store between clients), so only users that send
to https:// pay for it. The plain client is built with certificate checks off, which is what
keeps reqwest from loading the store: it never carries https (``_client`` routes by scheme, and a
test checks that an unknown CA fails). Custom CAs come from ``SSL_CERT_FILE``, as for aiohttp.

reqwest's responses expose neither the final URL nor the redirect chain, so redirects are
followed here (``redirects.follow``) and transport errors become the seam's failure texts.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Iterator
from datetime import timedelta
from functools import lru_cache
from urllib.parse import urlsplit

from pyreqwest.client import Client, ClientBuilder
from pyreqwest.exceptions import (
    BodyDecodeError,
    BuilderError,
    ConnectError,
    NetworkError,
    PyreqwestError,
    ReadError,
    RequestTimeoutError,
)
from pyreqwest.http import HeaderMap
from pyreqwest.response import Response

from gaggle.http.cookies import CookieJar
from gaggle.http.redirects import REDIRECT_STATUSES, BadLocation, follow
from gaggle.http.seam import (
    CONNECTION_REFUSED,
    DEFAULT_TIMEOUT,
    LOCATION_NOT_A_URL,
    PAYLOAD_INCOMPLETE,
    SERVER_DISCONNECTED,
    TIMEOUT,
    Exchange,
    Headers,
    NoResponse,
    RequestOptions,
    connect_error,
    connection_error,
    dns_error,
    encode_body,
    encode_params,
    invalid_url,
    tls_error,
    unexpected_error,
)

_TIMEOUT = timedelta(seconds=DEFAULT_TIMEOUT)
_OS_ERROR = re.compile(r" \(os error \d+\)$")


class ReqwestClient:
    """One user's HTTP client on reqwest; clients are built on the user's first request."""

    __slots__ = ("_cookies", "_plain", "_tls")

    def __init__(self) -> None:
        self._cookies: CookieJar | None = None
        self._plain: Client | None = None
        self._tls: Client | None = None

    def _client(self, url: str) -> Client:
        if url.startswith("http://"):
            return self._plain or self._build(plain=True)
        return self._tls or self._build(plain=False)

    def _build(self, plain: bool) -> Client:
        if self._cookies is None:  # the jar of every client; reqwest feeds and reads its store
            self._cookies = CookieJar()
        builder = (
            ClientBuilder()
            .cookie_provider(self._cookies.store)
            .follow_redirects(False)  # followed in send(), to know the final URL
            .referer(False)
            .no_proxy()  # as aiohttp, which ignores proxy variables unless asked
            .timeout(_TIMEOUT)
        )
        if plain:
            client = self._plain = builder.danger_accept_invalid_certs(True).build()
        else:
            client = self._tls = builder.build()
        return client

    async def send(self, method: str, url: str, options: RequestOptions) -> Exchange:
        target = encode_params(url, options.params)
        try:
            response = await self._send(method, target, options, True, options.timeout)
            if options.allow_redirects and response.status in REDIRECT_STATUSES:
                return await follow(self._hop, method, url, target, options, _HopAnswer(response))
            body = await response.bytes()
            headers = Headers(_Lines(response.headers))
            return Exchange(response.status, target, False, headers, body.to_bytes())
        except (PyreqwestError, ValueError) as error:  # ValueError: a URL reqwest cannot parse
            return Exchange(status=0, final_url=url, error=describe_error(error, target))

    def _send(
        self, method: str, url: str, options: RequestOptions, body: bool, timeout: float | None
    ) -> Awaitable[Response]:
        builder = self._client(url).request(method, url)
        headers = options.headers
        if headers:
            builder.headers(headers)
        payload, content_type = encode_body(options) if body else (b"", "")
        if content_type:
            builder.body_bytes(payload)
            if not headers or not any(key.lower() == "content-type" for key in headers):
                builder.header("Content-Type", content_type)
        if timeout is not None:
            builder.timeout(timedelta(seconds=timeout))
        return builder.build().send()

    async def _hop(
        self, method: str, url: str, options: RequestOptions, body: bool, timeout: float
    ) -> _HopAnswer:
        try:
            return _HopAnswer(await self._send(method, url, options, body, timeout))
        except (PyreqwestError, ValueError) as error:
            raise NoResponse(describe_error(error, url)) from error

    async def close(self) -> None:
        for client in (self._plain, self._tls):
            if client is not None:
                await client.close()
        self._plain = self._tls = None


class _HopAnswer:
    """A reqwest response in a redirect chain (``redirects.HopAnswer``)."""

    __slots__ = ("_response",)

    def __init__(self, response: Response) -> None:
        self._response = response

    @property
    def status(self) -> int:
        return self._response.status

    def location(self) -> str | None:
        try:
            return self._response.get_header("Location")
        except ValueError:  # bytes beyond visible ASCII: pyreqwest gives no text for them
            raise BadLocation(LOCATION_NOT_A_URL) from None

    async def exchange(self, url: str, redirected: bool) -> Exchange:
        response = self._response
        body = (await response.bytes()).to_bytes()
        headers = Headers(_Lines(response.headers))
        return Exchange(response.status, url, redirected, headers, body)


class _Lines:
    """reqwest's header map as the lines ``Headers`` reads, names in HTTP/1 title case
    (``Content-Type``) as nearly every server spells them: reqwest lowers names and keeps no
    record of how the server wrote them. Converted when first read, so a response whose headers
    nobody reads costs no copy; pyreqwest hands out visible ASCII only, which latin-1 encodes."""

    __slots__ = ("_lines", "_map")

    def __init__(self, headers: HeaderMap) -> None:
        self._map = headers
        self._lines: list[tuple[bytes, bytes]] | None = None

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        lines = self._lines
        if lines is None:
            items = self._map.items()
            lines = self._lines = [(_title_case(k), v.encode("latin-1")) for k, v in items]
        return iter(lines)

    def __len__(self) -> int:
        return len(self._map)


@lru_cache(maxsize=1024)
def _title_case(name: str) -> bytes:
    return "-".join(part.capitalize() for part in name.split("-")).encode("latin-1")


def describe_error(error: BaseException, url: str) -> str:
    """The seam's text for the failure: the one the other clients give for the same failure."""
    if isinstance(error, RequestTimeoutError):
        return TIMEOUT
    if isinstance(error, BuilderError) or not isinstance(error, PyreqwestError):
        return invalid_url(url)  # what reqwest refused to send, or could not parse
    causes = _causes(error)
    if isinstance(error, ConnectError) and "client error (Connect)" in causes:
        host, port = _host_port(url)
        if "dns error" in causes:
            return dns_error(host)
        if any(cause.startswith("invalid peer certificate") for cause in causes):
            return tls_error(host, port)
        return connect_error(host, port, _reason(causes[-1]))
    if isinstance(error, NetworkError):
        if "connection closed before message completed" in causes:
            return SERVER_DISCONNECTED
        if isinstance(error, ReadError) and not _OS_ERROR.search(causes[-1] if causes else ""):
            return PAYLOAD_INCOMPLETE
        return connection_error(_reason(causes[-1]) if causes else "unknown")
    if isinstance(error, BodyDecodeError):
        return PAYLOAD_INCOMPLETE
    return unexpected_error(error)


def _causes(error: BaseException) -> list[str]:
    details = getattr(error, "details", None) or {}
    return [cause["message"] for cause in details.get("causes") or ()]


def _reason(message: str) -> str:
    """``Connection refused (os error 111)`` → the seam's wording for the same OS error."""
    reason = _OS_ERROR.sub("", message)
    return CONNECTION_REFUSED if reason == "Connection refused" else reason


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return parts.hostname or "", port or (443 if parts.scheme == "https" else 80)
