"""``HttpClient`` on aiohttp: one ClientSession per user, created on the user's first request.

aiohttp could follow redirects itself; it sends each request with ``allow_redirects=False``
and lets ``redirects.follow`` walk the chain instead, so the redirect rules (hops, method
changes, headers kept from another origin, the chain's timeout) are the other clients' too.
Cookies set by a redirect response still reach the next request: the session's jar takes them
from every response.
"""

from __future__ import annotations

import asyncio

import aiohttp
from yarl import URL

from gaggle.http.redirects import REDIRECT_STATUSES, follow
from gaggle.http.seam import (
    DEFAULT_TIMEOUT,
    PAYLOAD_INCOMPLETE,
    SERVER_DISCONNECTED,
    TIMEOUT,
    Exchange,
    Headers,
    NoResponse,
    Params,
    RequestOptions,
    connect_error,
    connection_error,
    dns_error,
    encode_params,
    invalid_url,
    os_reason,
    tls_error,
    unexpected_error,
)

_TIMEOUT = aiohttp.ClientTimeout(total=DEFAULT_TIMEOUT)


def describe_error(error: BaseException) -> str:
    """The seam's text for the failure: the one the other clients give for the same failure."""
    if isinstance(error, asyncio.TimeoutError):
        return TIMEOUT
    if isinstance(error, aiohttp.ClientConnectorDNSError):
        return dns_error(error.host)
    if isinstance(error, aiohttp.ClientConnectorCertificateError):
        return tls_error(error.host, error.port or 0)  # None only off TCP (a unix socket)
    if isinstance(error, aiohttp.ClientConnectorError):
        return connect_error(error.host, error.port or 0, os_reason(error.os_error))
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return SERVER_DISCONNECTED
    if isinstance(error, aiohttp.ClientOSError):
        return connection_error(os_reason(error))
    if isinstance(error, aiohttp.ClientPayloadError):
        return PAYLOAD_INCOMPLETE  # aiohttp's texts carry byte counts: one per kind
    if isinstance(error, aiohttp.InvalidURL):
        return invalid_url(str(error.url))
    if isinstance(error, aiohttp.NonHttpUrlClientError):  # ftp://…: its text is the URL
        return invalid_url(str(error))
    return unexpected_error(error)


class AiohttpClient:
    """Per-user cookies (IP hosts included: aiohttp's default jar ignores them) and keep-alive."""

    __slots__ = ("_session",)

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        session = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            timeout=_TIMEOUT,
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
        )
        # aiohttp resends an idempotent request once when its connection breaks, even after
        # the server read it: the target would count two requests where Gaggle records one.
        if hasattr(session, "_retry_connection"):
            session._retry_connection = False
        self._session = session
        return session

    async def send(self, method: str, url: str, options: RequestOptions) -> Exchange:
        try:
            target = _with_params(url, options.params)
            exchange = await self._exchange(method, target, options, True, options.timeout)
            if options.allow_redirects and exchange.status in REDIRECT_STATUSES:
                answer = _HopAnswer(exchange)
                return await follow(self._hop, method, url, str(target), options, answer)
            return exchange
        except NoResponse as failure:
            return Exchange(status=0, final_url=url, error=str(failure))

    async def _exchange(
        self,
        method: str,
        url: str | URL,
        options: RequestOptions,
        body: bool,
        timeout: float | None,
    ) -> Exchange:
        """One request and its whole response (a redirect's body too: the connection is kept)."""
        session = self._session or self._open()
        try:
            async with session.request(
                method,
                url,
                headers=options.headers,
                data=options.data if body else None,
                json=options.json if body else None,
                timeout=_TIMEOUT if timeout is None else aiohttp.ClientTimeout(timeout),
                allow_redirects=False,
            ) as response:
                content = await response.read()
                headers = Headers(response.raw_headers)  # the server's lines, bytes as sent
                return Exchange(response.status, str(response.url), False, headers, content)
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            raise NoResponse(describe_error(error)) from None

    async def _hop(
        self, method: str, url: str, options: RequestOptions, body: bool, timeout: float
    ) -> _HopAnswer:
        return _HopAnswer(await self._exchange(method, url, options, body, timeout))

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


class _HopAnswer:
    """A read response in a redirect chain (``redirects.HopAnswer``)."""

    __slots__ = ("_exchange",)

    def __init__(self, exchange: Exchange) -> None:
        self._exchange = exchange

    @property
    def status(self) -> int:
        return self._exchange.status

    def location(self) -> str | None:
        return self._exchange.headers.get("Location")

    async def exchange(self, url: str, redirected: bool) -> Exchange:
        exchange = self._exchange  # its final_url is ``url`` as aiohttp quoted it
        exchange.redirected = redirected
        return exchange


def _with_params(url: str, params: Params | None) -> str | URL:
    """``url`` quoted as aiohttp quotes any URL, then the seam's query, which yarl is told is
    encoded: its own quoting would spell some characters differently from the other clients."""
    if not params:
        return url
    try:
        quoted = str(URL(url))
    except ValueError:
        raise NoResponse(invalid_url(url)) from None  # aiohttp's InvalidUrlClientError
    return URL(encode_params(quoted, params), encoded=True)
