"""The one seam between the engine and an HTTP library.

A user owns one ``HttpClient`` (its own cookie jar and keep-alive connections). The engine asks
it to ``send`` a request and gets back an ``Exchange``: the final status, headers and body after
redirects, or a transport error as text. Clients never raise for network trouble — a refused or
reset connection is a measured outcome, not a crash — so every library plugged in here is counted
the same way. Three implementations: httptools_client (the default: the loop's sockets, llhttp),
reqwest_client (Rust's reqwest) and aiohttp_client; one behaviour suite runs against all three.

What a task sees is decided here, above the libraries, once: the ``Headers`` of a response,
the failure texts, how ``params`` and a body are encoded; and ``redirects.follow`` walks every
client's redirect chains, each client sending one request at a time.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import ItemsView, Iterator, Mapping, Sequence, ValuesView
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, overload
from urllib.parse import urlencode

DEFAULT_TIMEOUT = 60.0  # seconds for one request, body included
Params = Mapping[str, str] | Sequence[tuple[str, str]]  # pairs repeat a key: [("k", "1"), …]


@dataclass(slots=True)
class RequestOptions:
    """What a task may pass besides method and URL; mirrors the common subset of aiohttp/httpx."""

    headers: Mapping[str, str] | None = None
    params: Params | None = None
    data: Any = None
    json: Any = None
    timeout: float | None = None
    allow_redirects: bool = True


_T = TypeVar("_T")


class HeaderLines(Protocol):
    """What ``Headers`` reads: (name, value) pairs as bytes off the wire (latin-1), in order,
    iterable again and again — a list, aiohttp's ``raw_headers``, reqwest's lines."""

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]: ...

    def __len__(self) -> int: ...


class Headers(Mapping[str, str]):
    """A response's header lines as the server sent them: in order, repeated names included.

    Lookups (``[]``, ``get``, ``in``) ignore case and read a name's first line, ``getall`` reads
    all of them (two Set-Cookie lines are two values); ``keys()``/iteration and ``items()`` give
    every line with the server's spelling of its name, as aiohttp's multidict does. One type
    for every client, so a task reads headers the same way whichever client sent its request.

    Built once per response on the hot path and rarely read, so it keeps the client's own lines
    and decodes only what is read. A scan per lookup, not an index: a response has few headers
    and a task reads one or two, and building a lowercase index cost more than the scans it
    saves (measured). Names of another length than the key are not lowered at all.
    """

    __slots__ = ("_raw",)

    def __init__(self, raw: HeaderLines = ()) -> None:
        self._raw = raw

    def __getitem__(self, key: str) -> str:
        wanted = key.lower().encode("latin-1", "replace")  # beyond latin-1: matches no name
        size = len(wanted)
        for name, value in self._raw:
            if len(name) == size and name.lower() == wanted:
                return value.decode("latin-1")
        raise KeyError(key)

    @overload
    def get(self, key: str, /) -> str | None: ...

    @overload
    def get(self, key: str, /, default: str | _T) -> str | _T: ...

    def get(self, key: str, /, default: object = None) -> object:
        wanted = key.lower().encode("latin-1", "replace")  # __getitem__'s scan, no KeyError
        size = len(wanted)
        for name, value in self._raw:
            if len(name) == size and name.lower() == wanted:
                return value.decode("latin-1")
        return default

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def getall(self, key: str) -> list[str]:
        """Every value of ``key``, in the order the server sent them; empty when it sent none."""
        wanted = key.lower().encode("latin-1", "replace")
        size = len(wanted)
        return [
            value.decode("latin-1")
            for name, value in self._raw
            if len(name) == size and name.lower() == wanted
        ]

    def __iter__(self) -> Iterator[str]:
        return (name.decode("latin-1") for name, _ in self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def items(self) -> ItemsView[str, str]:
        return _Items(self)

    def values(self) -> ValuesView[str]:
        return _Values(self)

    def __repr__(self) -> str:
        return f"Headers({list(self.items())!r})"


class _Items(ItemsView[str, str]):
    """Every (name, value) line, repeated names included (a mapping's view would repeat the
    first value of a name)."""

    _mapping: Headers

    def __iter__(self) -> Iterator[tuple[str, str]]:
        lines = self._mapping._raw
        return ((name.decode("latin-1"), value.decode("latin-1")) for name, value in lines)

    def __contains__(self, item: object) -> bool:
        return item in list(self)


class _Values(ValuesView[str]):
    _mapping: Headers

    def __iter__(self) -> Iterator[str]:
        return (value.decode("latin-1") for _, value in self._mapping._raw)


@dataclass(slots=True)
class Exchange:
    """What came back: status 0 and a non-empty ``error`` when no HTTP response arrived."""

    status: int
    final_url: str
    redirected: bool = False
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    error: str = ""


class NoResponse(Exception):
    """A request got no HTTP response; ``str(error)`` is its record's failure text (below).
    Raised inside a client and the redirect walk only: ``send`` returns it as an Exchange."""


# The failure texts, the same from every client: the errors table and the requests log group
# failures by them, so one kind of failure reads alike whatever library met it, and carries no
# byte counts or addresses beyond host:port that would split it into many. aiohttp's wording.
TIMEOUT = "timeout"
SERVER_DISCONNECTED = "server disconnected"
PAYLOAD_INCOMPLETE = "response payload incomplete"  # a body cut short or that fails to decode
TOO_MANY_REDIRECTS = "too many redirects"
# a redirect whose Location the chain cannot go on to: the 3xx is recorded with one of these
LOCATION_NOT_A_URL = "invalid redirect: Location is not a valid URL"
LOCATION_NOT_HTTP = "invalid redirect: Location is not an http or https URL"
CONNECTION_REFUSED = "connection refused"  # a connect error's reason


def dns_error(host: str) -> str:
    return f"dns error: {host}"


def tls_error(host: str, port: int) -> str:
    return f"tls error: {host}:{port}: certificate verify failed"


def connect_error(host: str, port: int, reason: str) -> str:
    return f"connect error: {host}:{port}: {reason}"


def connection_error(reason: str) -> str:
    """An established connection broke (reset, say)."""
    return f"connection error: {reason}"


def invalid_url(url: str) -> str:
    return f"invalid url: {url}"


def invalid_response(reason: str) -> str:
    return f"invalid response: {reason}"


def unexpected_error(error: BaseException) -> str:
    """Whatever else a library raised: its type, and its message when it has one."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def os_reason(error: OSError) -> str:
    """An OS error as a reason in the texts above: refused and timed out in words, the rest as
    the OS puts it (``Connection reset by peer``)."""
    if isinstance(error, ConnectionRefusedError):
        return CONNECTION_REFUSED
    if isinstance(error, TimeoutError):
        return TIMEOUT
    return error.strerror or type(error).__name__


class HttpClient(Protocol):
    async def send(self, method: str, url: str, options: RequestOptions) -> Exchange: ...

    async def close(self) -> None: ...


class ClientFactory(Protocol):
    def __call__(self) -> HttpClient: ...


def encode_body(options: RequestOptions) -> tuple[bytes, str]:
    """``json=`` or ``data=`` as aiohttp encodes them (bytes, text, or form fields as a mapping
    or pairs), and the Content-Type the body gets unless the task sets its own; ``(b"", "")``
    without a body. One encoding for every client, so the target sees the same request."""
    data = options.data
    if options.json is not None:
        return jsonlib.dumps(options.json).encode(), "application/json"
    if data is None:
        return b"", ""
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data), "application/octet-stream"
    if isinstance(data, str):
        return data.encode(), "text/plain; charset=utf-8"
    if isinstance(data, Mapping | list | tuple):
        return urlencode(data).encode(), "application/x-www-form-urlencoded"
    raise TypeError(
        f"data={type(data).__name__} is not supported; use bytes, str, a mapping or a list of pairs"
    )


def encode_params(url: str, params: Params | None) -> str:
    """``url`` with ``params`` added to its query (after any it has, before a #fragment) as a
    form encodes them: ``a+b``, UTF-8 %-escapes, a key once per pair. One encoding for every
    client, so the target sees the same query line whichever sent it."""
    if not params:
        return url
    base, hash_sign, fragment = url.partition("#")
    joiner = "" if base.endswith(("?", "&")) else "&" if "?" in base else "?"
    return f"{base}{joiner}{urlencode(params)}{hash_sign}{fragment}"
