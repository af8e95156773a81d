"""``HttpClient`` on aiohttp: one ClientSession per user, created on the user's first request."""

from __future__ import annotations

import asyncio

import aiohttp
from yarl import URL

from gaggle.http.seam import (
    DEFAULT_TIMEOUT,
    PAYLOAD_INCOMPLETE,
    SERVER_DISCONNECTED,
    TIMEOUT,
    TOO_MANY_REDIRECTS,
    Exchange,
    Headers,
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
    if isinstance(error, aiohttp.TooManyRedirects):
        return TOO_MANY_REDIRECTS
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
        session = self._session or self._open()
        timeout = _TIMEOUT if options.timeout is None else aiohttp.ClientTimeout(options.timeout)
        try:
            async with session.request(
                method,
                _with_params(url, options.params),
                headers=options.headers,
                data=options.data,
                json=options.json,
                timeout=timeout,
                allow_redirects=options.allow_redirects,
            ) as response:
                body = await response.read()
                return Exchange(
                    status=response.status,
                    final_url=str(response.url),
                    redirected=bool(response.history),
                    headers=Headers(response.raw_headers),  # the server's lines, bytes as sent
                    body=body,
                )
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            return Exchange(status=0, final_url=url, error=describe_error(error))

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


def _with_params(url: str, params: Params | None) -> str | URL:
    """``url`` quoted as aiohttp quotes any URL, then the seam's query, which yarl is told is
    encoded: its own quoting would spell some characters differently from the other clients."""
    if not params:
        return url
    try:
        quoted = str(URL(url))
    except ValueError:
        raise aiohttp.InvalidUrlClientError(url) from None  # what aiohttp raises for it
    return URL(encode_params(quoted, params), encoded=True)
