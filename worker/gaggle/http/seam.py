"""The one seam between the engine and an HTTP library.

A user owns one ``HttpClient`` (its own cookie jar and keep-alive connections). The engine asks
it to ``send`` a request and gets back an ``Exchange``: the final status, headers and body after
redirects, or a transport error as text. Clients never raise for network trouble — a refused or
reset connection is a measured outcome, not a crash — so every library plugged in here is counted
the same way. Three implementations: httptools_client (the default: the loop's sockets, llhttp),
reqwest_client (Rust's reqwest) and aiohttp_client; one behaviour suite runs against all three.

What a task sees is decided here, above the libraries, once: the ``Headers`` of a response, the
failure texts (``failures`` maps each library's errors onto them), how ``params``, a body and the
URL are encoded; and ``redirects.follow`` walks every client's redirect chains, each client
sending one request at a time.

Where servers send what the libraries read differently, one outcome is chosen — curl's and
Python's http.client's, or RFC 9112's where it is clear — and all three clients meet it
(tests/http/test_agreement.py):

- The URL goes out as the WHATWG URL standard, browsers and reqwest write it (``wire_url``):
  UTF-8 %-escapes for a space, non-ASCII and the few characters a path or query cannot hold,
  escapes already there kept, dot segments removed, no fragment.
- A request carries ``Content-Length`` when it has a body, 0 on a body-less POST, PUT or PATCH
  (RFC 9110 §8.6), and asks for ``ACCEPT_ENCODING``: gzip and deflate, which every client
  decodes alike (``decode_body``, deflate with or without its zlib wrapper). A body in any other
  coding (an unsolicited br) is handed over as sent, its Content-Encoding for the task to read.
- A bare LF ends a line (RFC 9112 §2.2 allows it); an obs-folded header line is joined with a
  space (§5.2: a user agent MUST); a Transfer-Encoding not ending in chunked is read to the close
  (§6.3); a 101 nobody asked for is the answer, its connection not reused (as http.client).
- Failures (status 0): Content-Length with Transfer-Encoding (§6.3: "ought to be handled as an
  error"); more than ``MAX_HEADERS`` header lines, or a head of more than about
  ``MAX_HEAD_BYTES``: hyper's limits, which reqwest cannot raise (http.client also stops at 100
  lines; where near the byte limit each client stops differs by a read).
- Set-Cookie lines are kept by one jar (``cookies``): an expired one is never sent back.

Where a client cannot meet the outcome, and why:

- aiohttp fails a response whose body runs past its Content-Length when the extra bytes arrive
  with it (its parser fails the whole read; httptools and reqwest stop at Content-Length and drop
  the connection, as curl does); it reads control characters in a header value that llhttp and
  reqwest refuse (lenient parsing), and sends ``Content-Length: 0`` on a body-less DELETE.
- reqwest reads a header value with bytes beyond visible ASCII (obs-text, RFC 9110 §5.5) as
  empty: pyreqwest 0.15 gives no text and no bytes for it. httptools and aiohttp read it as
  latin-1, as http.client does. Its other lines read as usual, and nothing raises.
- llhttp (httptools, aiohttp) refuses a repeated Content-Length even when the values agree and
  reads an ``HTTP/2.0`` status line; hyper (reqwest) takes the first and refuses the second.
"""

from __future__ import annotations

import json as jsonlib
import re
import zlib
from collections.abc import ItemsView, Iterator, Mapping, Sequence, ValuesView
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol, TypeVar, overload
from urllib.parse import urlencode

DEFAULT_TIMEOUT = 60.0  # seconds for one request, body included
Params = Mapping[str, str] | Sequence[tuple[str, str]]  # pairs repeat a key: [("k", "1"), …]
ACCEPT_ENCODING = "gzip, deflate"  # what every client asks for and decodes (decode_body)
SIZED_METHODS = frozenset(("POST", "PUT", "PATCH"))  # Content-Length: 0 without a body
MAX_HEADERS = 100  # header lines of a response: hyper's fixed limit (and http.client's)
MAX_HEAD_BYTES = 8192 + 4096 * 100  # a response's head, about: hyper's read buffer


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
# an answer that is not HTTP/1.1 as RFC 9112 writes it, by what is wrong with it
BAD_STATUS_LINE = "invalid response: bad status line"
BAD_HEADER = "invalid response: bad header"
BAD_CONTENT_LENGTH = "invalid response: bad Content-Length"
BAD_TRANSFER_ENCODING = "invalid response: bad Transfer-Encoding"
CONTENT_LENGTH_WITH_TRANSFER_ENCODING = "invalid response: Content-Length with Transfer-Encoding"
HEAD_TOO_LARGE = "invalid response: head too large"  # see MAX_HEADERS, MAX_HEAD_BYTES
MALFORMED = "invalid response: malformed"  # what none of the above names


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


def decode_body(body: bytes, coding: str) -> bytes:
    """``body`` decoded from its Content-Encoding when it is one of ``ACCEPT_ENCODING``'s; any
    other coding as sent. Raises ``NoResponse`` for a body that is not the coding it claims."""
    coding = coding.strip().lower()
    try:
        if coding in ("gzip", "x-gzip"):
            return zlib.decompress(body, 16 + zlib.MAX_WBITS)
        if coding == "deflate":
            try:
                return zlib.decompress(body)
            except zlib.error:
                return zlib.decompress(body, -zlib.MAX_WBITS)  # raw deflate, as some servers send
    except zlib.error:
        raise NoResponse(PAYLOAD_INCOMPLETE) from None
    return body


# The characters a URL may hold as they are in its host, path and query alike: a URL of these
# alone, with no dot segment, goes on the wire as it is (the URLs of a load test, so checked in C).
_AS_IS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.~!$&()*+,;=:@/?%|^[]-"
_PATH_ESCAPED = re.compile(r'[^\x21-\x7e]|["<>`{}]')  # the WHATWG path percent-encode set
_QUERY_ESCAPED = re.compile(r"[^\x21-\x7e]|[\"<>']")  # its special-query percent-encode set


@lru_cache(maxsize=4096)
def wire_url(url: str) -> str:
    """``url`` as it goes on the wire, as browsers and reqwest write it (the WHATWG URL standard):
    in the path and query, a space, non-ASCII (UTF-8) and the characters they cannot hold as they
    are %-escaped, escapes already there and a lone ``%`` kept; a path's ``\\`` is a ``/``;
    dot segments are removed (RFC 3986 §5.2.4); the fragment stays behind. The host is left to
    the client, and so is a URL that is not http(s): it refuses what it cannot send."""
    if (
        url.isascii()
        and not url.encode().translate(None, _AS_IS)
        and "/." not in url
        and ("%2" not in url or "%2e" not in url.lower())
    ):
        return url
    head = url.partition("#")[0]
    start = head.find("://") + 3
    if start < 3:
        return url
    end = next((i for i, char in enumerate(head[start:], start) if char in "/?\\"), len(head))
    path, question, query = head[end:].partition("?")
    try:
        path = _PATH_ESCAPED.sub(_escape, path.replace("\\", "/")) or "/"
        query = _QUERY_ESCAPED.sub(_escape, query)
    except UnicodeEncodeError:  # a lone surrogate: no URL a client can send
        return url
    if "/." in path or "%2e" in path.lower():
        path = _remove_dot_segments(path)
    return f"{head[:end]}{path}{question}{query}"


def _escape(match: re.Match[str]) -> str:
    return "".join(f"%{byte:02X}" for byte in match.group().encode())


_DOT = frozenset((".", "%2e"))
_DOTS = frozenset(("..", ".%2e", "%2e.", "%2e%2e"))


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4 on an absolute path, ``%2e`` read as a dot (as the WHATWG standard)."""
    segments = path.split("/")
    kept: list[str] = []
    for segment in segments[1:]:
        lower = segment.lower()
        if lower in _DOTS:
            if kept:
                kept.pop()
        elif lower not in _DOT:
            kept.append(segment)
    if segments[-1].lower() in _DOT | _DOTS:
        kept.append("")  # "/a/.." is "/", "/a/b/." is "/a/b/"
    return "/" + "/".join(kept)
