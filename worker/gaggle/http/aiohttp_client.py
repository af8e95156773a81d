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

The rest of what aiohttp would do its own way is done the seam's too: the URL goes out as
``seam.wire_url`` writes it (yarl is told it is encoded), the body as ``seam.encode_body``
encodes it, bodies are decoded by ``seam.decode_body`` (aiohttp would decode br when brotli is
installed), its parser's limits are hyper's, and its errors read as the others' (``failures``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from http.cookies import BaseCookie, Morsel
from typing import Any

import aiohttp
from yarl import URL

from gaggle.http.cookies import CookieJar
from gaggle.http.failures import from_aiohttp
from gaggle.http.redirects import REDIRECT_STATUSES, follow
from gaggle.http.seam import (
    ACCEPT_ENCODING,
    DEFAULT_TIMEOUT,
    MAX_HEAD_BYTES,
    MAX_HEADERS,
    Exchange,
    Headers,
    NoResponse,
    RequestOptions,
    decode_body,
    encode_body,
    encode_params,
    invalid_url,
    wire_url,
)

_TIMEOUT = aiohttp.ClientTimeout(total=DEFAULT_TIMEOUT)
_NO_BODY_HEADERS = ("Content-Type",)  # aiohttp's own default for a body-less POST, PUT, PATCH
_POST_METHODS = aiohttp.ClientRequest.POST_METHODS  # only they get it: a GET skips nothing


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
            headers={"Accept-Encoding": ACCEPT_ENCODING},  # a task's own replaces it
            auto_decompress=False,  # decode_body decodes, as for the other clients
            # hyper's limits (seam.MAX_HEADERS, MAX_HEAD_BYTES), so that the clients agree
            max_line_size=MAX_HEAD_BYTES,
            max_field_size=MAX_HEAD_BYTES,
            max_headers=MAX_HEADERS,
        )
        # aiohttp resends an idempotent request once when its connection breaks, even after
        # the server read it: the target would count two requests where Gaggle records one.
        if hasattr(session, "_retry_connection"):
            session._retry_connection = False
        self._session = session
        return session

    async def send(self, method: str, url: str, options: RequestOptions) -> Exchange:
        target = wire_url(encode_params(url, options.params))
        try:
            exchange = await self._exchange(method, target, options, True, options.timeout)
            if options.allow_redirects and exchange.status in REDIRECT_STATUSES:
                answer = _HopAnswer(exchange)
                return await follow(self._hop, method, url, target, options, answer)
            return exchange
        except NoResponse as failure:
            return Exchange(status=0, final_url=url, error=str(failure))

    async def _exchange(
        self, method: str, url: str, options: RequestOptions, body: bool, timeout: float | None
    ) -> Exchange:
        """One request and its whole response (a redirect's body too: the connection is kept)."""
        session = self._session or self._open()
        headers = options.headers
        cookies = self._hook.jar
        if cookies is not None and not (headers and _sets(headers, "cookie")):  # a task's wins
            cookie = cookies.header(url)
            if cookie:
                headers = {**headers, "Cookie": cookie} if headers else {"Cookie": cookie}
        try:
            payload, content_type = encode_body(options) if body else (b"", "")
            data: Any = payload if content_type else None
        except TypeError:  # a FormData, a file: aiohttp's own (the other clients refuse them)
            content_type, data = "", options.data
        if content_type and not (headers and _sets(headers, "content-type")):
            headers = (
                {**headers, "Content-Type": content_type}
                if headers
                else {"Content-Type": content_type}
            )
        try:
            async with session.request(
                method,
                _as_sent(url),
                headers=headers,
                data=data,
                skip_auto_headers=(
                    _NO_BODY_HEADERS if data is None and method.upper() in _POST_METHODS else None
                ),
                timeout=_TIMEOUT if timeout is None else aiohttp.ClientTimeout(timeout),
                allow_redirects=False,
            ) as response:
                content = await response.read()
                lines = Headers(response.raw_headers)  # the server's lines, bytes as sent
                coding = response.headers.get("Content-Encoding")
                if coding and content:
                    content = decode_body(content, coding)
                return Exchange(response.status, url, False, lines, content)
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            raise NoResponse(from_aiohttp(error)) from None
        except ValueError:  # yarl's, for a port out of range or an unclosed [IPv6] host
            raise NoResponse(invalid_url(url)) from None

    async def _hop(
        self, method: str, url: str, options: RequestOptions, body: bool, timeout: float
    ) -> _HopAnswer:
        return _HopAnswer(await self._exchange(method, url, options, body, timeout))

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


def _sets(headers: Mapping[str, str], lower_name: str) -> bool:
    return any(name.lower() == lower_name for name in headers)


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
        exchange = self._exchange  # its final_url is ``url``
        exchange.redirected = redirected
        return exchange


@functools.lru_cache(maxsize=4096)  # a test's URLs repeat: yarl parses each once
def _as_sent(url: str) -> URL:
    """``url`` (``wire_url``'s) for aiohttp to send as it is: yarl's own quoting would escape
    other characters, and decode escapes, where the other clients keep them. A host beyond ASCII
    is left to yarl, which writes it in IDNA."""
    return URL(url, encoded=url.isascii())
