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
followed here (``redirects.follow``) and transport errors become the seam's failure texts
(``failures``). What reqwest would otherwise do its own way is done the seam's: bodies are
decoded by ``seam.decode_body`` (reqwest's deflate refuses a raw one, and it asks for br and
zstd), an empty POST says ``Content-Length: 0``, obs-folded lines are read, and an answer with
both Content-Length and Transfer-Encoding fails, as llhttp fails it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Generator, Iterator, Mapping
from datetime import timedelta
from functools import lru_cache
from types import TracebackType
from typing import Any, Generic, TypeVar

from pyreqwest.client import Client, ClientBuilder
from pyreqwest.exceptions import PyreqwestError
from pyreqwest.http import HeaderMap
from pyreqwest.response import Response

from gaggle.http.cookies import CookieJar
from gaggle.http.failures import from_reqwest
from gaggle.http.redirects import REDIRECT_STATUSES, BadLocation, follow
from gaggle.http.seam import (
    ACCEPT_ENCODING,
    CONTENT_LENGTH_WITH_TRANSFER_ENCODING,
    DEFAULT_TIMEOUT,
    LOCATION_NOT_A_URL,
    SIZED_METHODS,
    Exchange,
    Headers,
    NoResponse,
    RequestOptions,
    decode_body,
    encode_body,
    encode_params,
    wire_url,
)

_TIMEOUT = timedelta(seconds=DEFAULT_TIMEOUT)
_T = TypeVar("_T")


class _Thrown(Generic[_T]):
    """A pyreqwest awaitable that takes ``throw`` in both forms. Its own ``throw`` takes the
    exception alone; a compiled engine (mypyc, tools/compiled.py) passes a cancel down as
    ``throw(type, value, traceback)``, which the interpreter hands on as it got it — without
    this the run's stop failed such a request as a TypeError instead of abandoning it."""

    __slots__ = ("_inner",)

    def __init__(self, inner: Awaitable[_T]) -> None:
        self._inner: Any = inner.__await__()

    def __await__(self) -> Generator[Any, Any, _T]:
        return self  # type: ignore[return-value]  # send/throw/close: a generator's protocol

    def __iter__(self) -> _Thrown[_T]:
        return self

    def __next__(self) -> Any:
        return self._inner.send(None)

    def send(self, value: Any) -> Any:
        return self._inner.send(value)

    def throw(
        self,
        kind: type[BaseException] | BaseException,
        value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> Any:
        error = value if value is not None else kind
        if isinstance(error, type):
            error = error()
        if traceback is not None:
            error = error.with_traceback(traceback)
        return self._inner.throw(error)

    def close(self) -> None:
        self._inner.close()


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
            .gzip(False)  # bodies are decoded by the seam, as the other clients decode them
            .deflate(False)
            .brotli(False)
            .zstd(False)
            .default_headers({"Accept-Encoding": ACCEPT_ENCODING})  # a task's own replaces it
            .http1_allow_obsolete_multiline_headers_in_responses(True)
        )
        if plain:
            client = self._plain = builder.danger_accept_invalid_certs(True).build()
        else:
            client = self._tls = builder.build()
        return client

    async def send(self, method: str, url: str, options: RequestOptions) -> Exchange:
        target = wire_url(encode_params(url, options.params))
        try:
            response = await self._send(method, target, options, True, options.timeout)
            answer = _HopAnswer(response)
            if options.allow_redirects and response.status in REDIRECT_STATUSES:
                return await follow(self._hop, method, url, target, options, answer)
            return await answer.exchange(target, False)
        except (PyreqwestError, ValueError) as error:  # ValueError: a URL reqwest cannot parse
            return Exchange(status=0, final_url=url, error=from_reqwest(error, target))
        except NoResponse as failure:
            return Exchange(status=0, final_url=url, error=str(failure))

    async def _send(
        self, method: str, url: str, options: RequestOptions, body: bool, timeout: float | None
    ) -> Response:
        builder = self._client(url).request(method, url)
        headers = options.headers
        if headers:
            builder.headers(headers)
        payload, content_type = encode_body(options) if body else (b"", "")
        if content_type:
            builder.body_bytes(payload)
            if not headers or not any(key.lower() == "content-type" for key in headers):
                builder.header("Content-Type", content_type)
        if not payload and (content_type or method in SIZED_METHODS) and not _sets_length(headers):
            builder.header("Content-Length", "0")  # hyper sends none for an empty body
        if timeout is not None:
            builder.timeout(timedelta(seconds=timeout))
        response = await _Thrown(builder.build().send())
        framing = response.headers
        if "transfer-encoding" in framing and "content-length" in framing:
            raise NoResponse(CONTENT_LENGTH_WITH_TRANSFER_ENCODING)  # as llhttp refuses it
        return response

    async def _hop(
        self, method: str, url: str, options: RequestOptions, body: bool, timeout: float
    ) -> _HopAnswer:
        try:
            return _HopAnswer(await self._send(method, url, options, body, timeout))
        except (PyreqwestError, ValueError) as error:
            raise NoResponse(from_reqwest(error, url)) from error

    async def close(self) -> None:
        for client in (self._plain, self._tls):
            if client is not None:
                await _Thrown(client.close())
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
        try:
            body = (await _Thrown(response.bytes())).to_bytes()
        except (PyreqwestError, ValueError) as error:
            raise NoResponse(from_reqwest(error, url)) from error
        if body:
            try:
                coding = response.get_header("Content-Encoding")
            except ValueError:  # beyond visible ASCII: no coding of ACCEPT_ENCODING's
                coding = None
            if coding:
                body = decode_body(body, coding)
        headers = Headers(_Lines(response.headers))
        return Exchange(response.status, url, redirected, headers, body)


class _Lines:
    """reqwest's header map as the lines ``Headers`` reads, names in HTTP/1 title case
    (``Content-Type``) as nearly every server spells them: reqwest lowers names and keeps no
    record of how the server wrote them. Converted when first read, so a response whose headers
    nobody reads costs no copy. pyreqwest hands out visible ASCII only, which latin-1 encodes: a
    value with other bytes (obs-text) it gives neither as text nor as bytes, so it reads as
    empty (every value of that name: they are taken together), its line kept."""

    __slots__ = ("_lines", "_map")

    def __init__(self, headers: HeaderMap) -> None:
        self._map = headers
        self._lines: list[tuple[bytes, bytes]] | None = None

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        lines = self._lines
        if lines is None:
            try:
                items = [(_title_case(k), v.encode("latin-1")) for k, v in self._map.items()]
            except ValueError:
                items = self._readable()
            lines = self._lines = items
        return iter(lines)

    def _readable(self) -> list[tuple[bytes, bytes]]:
        """Name by name, a name whose values pyreqwest cannot give as text read as empty."""
        lines: list[tuple[bytes, bytes]] = []
        names = list(self._map.keys())  # a name once per value, in the map's order
        for name in dict.fromkeys(names):
            try:
                values = [value.encode("latin-1") for value in self._map.getall(name)]
            except ValueError:
                values = [b""] * names.count(name)
            lines.extend((_title_case(name), value) for value in values)
        return lines

    def __len__(self) -> int:
        return len(self._map)


def _sets_length(headers: Mapping[str, str] | None) -> bool:
    return bool(headers) and any(key.lower() == "content-length" for key in headers or ())


@lru_cache(maxsize=1024)
def _title_case(name: str) -> bytes:
    return "-".join(part.capitalize() for part in name.split("-")).encode("latin-1")
