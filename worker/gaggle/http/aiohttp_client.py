"""``HttpClient`` on aiohttp: one ClientSession per user, created on the user's first request.

aiohttp could follow redirects itself; it sends each request with ``allow_redirects=False``
and lets ``redirects.follow`` walk the chain instead, so the redirect rules (hops, method
changes, headers kept from another origin, the chain's timeout) are the other clients' too.
Cookies are the other clients' too (``cookies.CookieJar``): the session's jar is a hook that hands
every response's Set-Cookie lines to it (a redirect's included, so they reach the next hop), and
``_exchange`` adds the Cookie header it gives, as httptools does. aiohttp's own jar would be a
second set of rules: it keeps a cookie whose Expires is the Unix epoch (the date most frameworks
delete a cookie with), quotes values the server did not quote, and merges a task's Cookie header
with the jar's where reqwest and httptools let the task's win.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from http.cookies import BaseCookie, Morsel

import aiohttp
from yarl import URL

from gaggle.http.cookies import CookieJar
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
    """Per-user cookies and keep-alive."""

    __slots__ = ("_hook", "_session")
    _hook: _JarHook  # made with the session

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        self._hook = _JarHook()
        session = aiohttp.ClientSession(
            cookie_jar=self._hook,
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
        headers = options.headers
        cookies = self._hook.jar
        if cookies is not None and not (headers and _sets_cookie(headers)):  # a task's wins
            cookie = cookies.header(str(url))
            if cookie:
                headers = {**headers, "Cookie": cookie} if headers else {"Cookie": cookie}
        try:
            async with session.request(
                method,
                url,
                headers=headers,
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


def _sets_cookie(headers: Mapping[str, str]) -> bool:
    return any(name.lower() == "cookie" for name in headers)


class _JarHook(aiohttp.DummyCookieJar):
    """The session's cookie jar: it hands what responses set to the user's ``CookieJar`` (made
    on the first Set-Cookie) and gives aiohttp nothing to send (``_exchange`` adds the header)."""

    def __init__(self) -> None:
        super().__init__()
        self.jar: CookieJar | None = None

    def update_cookies_from_headers(self, headers: Sequence[str], response_url: URL) -> None:
        """A response's Set-Cookie lines as the server sent them (aiohttp >= 3.12.7)."""
        if headers:
            jar = self.jar = self.jar or CookieJar()
            jar.receive(headers, str(response_url))

    def update_cookies(self, cookies: object, response_url: URL | None = None) -> None:
        """An older aiohttp's parsed Set-Cookie lines, written out again for the jar."""
        if isinstance(cookies, BaseCookie) and cookies and response_url is not None:
            morsels: list[Morsel[str]] = list(cookies.values())
            self.update_cookies_from_headers([m.OutputString() for m in morsels], response_url)


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
