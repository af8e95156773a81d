"""The three HTTP clients agree: one outcome where their libraries differ, and one failure text
for each kind of failure (the review's D4, D10, D11 and D16).

Each case is answered by ``tests/support/raw_server.py`` and run through every client
(``http_client``). The outcome expected is curl's and Python's http.client's, or RFC 9112's where
it is clear (seam.py's docstring says which and why); what a task saw — status, body, failure
text, a header — must be that outcome for all three, and the server's count of requests must
equal Gaggle's. Where a client cannot meet it, the case names the client and its outcome, and
seam.py's docstring says why.
"""

from __future__ import annotations

import asyncio
import zlib
from dataclasses import dataclass, field
from typing import Any

import pytest
from rich.console import Console

from gaggle import TaskSet, task
from gaggle.http import CLIENTS, RequestOptions
from gaggle.http.seam import wire_url
from tests.http.test_hostile_servers import (
    ITERATIONS,
    PAST,
    USERS,
    assert_every_served_request_counted,
    load,
    run,
)
from tests.support.raw_server import Closing, RawServer, answer

TIMES = USERS * ITERATIONS  # responses each case is looked at


@dataclass(frozen=True)
class Seen:
    """What a task saw of one response: ``header`` is the case's header's value."""

    status: int
    body: bytes = b""
    error: str = ""
    header: str | None = None


def look(
    server: RawServer,
    path: str,
    http_client: str,
    console: Console,
    header: str = "",
    method: str = "GET",
    **request: Any,
) -> list[Seen]:
    """USERS users each send ``method path`` ITERATIONS times; what each response showed, once
    every request the server served is known to be counted and no task failed."""
    seen: list[Seen] = []

    class Look(TaskSet):
        @task
        async def look(self) -> None:
            response = await self.request(method, path, **request)
            value = response.headers.get(header) if header else None
            assert isinstance(response.text, str)  # it reads Content-Type: it never raises
            assert len(list(response.headers.items())) == len(response.headers)
            seen.append(Seen(response.status, response.body, response.error, value))

    result = run(Look, server, http_client, console)
    assert_every_served_request_counted(server, result)
    return seen


def raw(*lines: str, body: bytes = b"", end: str = "\r\n") -> bytes:
    """A response's bytes exactly as given: no Content-Length is added."""
    return (end.join(lines) + end + end).encode("latin-1") + body


OK = Seen(200, b"ok")
OK_BYTES = answer(200, body=b"ok")
RAW_DEFLATE = zlib.compress(b"raw " * 50)[2:-4]  # no zlib header and trailer: RFC 1951 alone
BROTLI = b"\x1b\x8b\x00\xf8\x8dT\xb5\xbf\x06\x11\x93\xa3\x93ilo\x11[$\xf0\xdb\x07"  # "brotli " * 20
HEADERS_100 = [f"X-H{i}: {i}" for i in range(99)]  # with Content-Length: 100 lines


# --- D16: one outcome for what curl and http.client accept ------------------------------------
@dataclass(frozen=True)
class Case:
    script: bytes
    seen: Seen
    header: str = ""
    differs: dict[str, Seen] = field(default_factory=dict)  # a client that cannot meet it


D16_CASES = {
    # gzip and deflate are decoded, deflate with or without its zlib wrapper (as curl does)
    "a-raw-deflate-body": Case(
        raw("HTTP/1.1 200 OK", "Content-Encoding: deflate", f"Content-Length: {len(RAW_DEFLATE)}")
        + RAW_DEFLATE,
        Seen(200, b"raw " * 50, header="deflate"),
        header="Content-Encoding",
    ),
    # a coding nobody asked for is handed over as sent, its Content-Encoding for the task to read
    "an-unsolicited-br-body": Case(
        answer(200, "Content-Encoding: br", body=BROTLI),
        Seen(200, BROTLI, header="br"),
        header="Content-Encoding",
    ),
    # RFC 9112 §2.2: a recipient MAY take a bare LF for CRLF; curl and http.client do
    "bare-lf-line-ends": Case(
        raw("HTTP/1.1 200 OK", "Content-Length: 2", "X-A: b", body=b"ok", end="\n"),
        Seen(200, b"ok", header="b"),
        header="X-A",
    ),
    # header lines beyond aiohttp's default 8 KiB, a status line too
    "a-16-kib-header-line": Case(
        answer(200, "X-Big: " + "a" * 16384, body=b"ok"),
        Seen(200, b"ok", header="a" * 16384),
        header="X-Big",
    ),
    "a-9-kib-status-line": Case(answer(200, reason="O" * 9000, body=b"ok"), OK),
    # 100 header lines at most, and a head of about 400 KiB: hyper's limits (reqwest cannot
    # raise them); http.client also stops at 100 lines
    "100-header-lines": Case(
        answer(200, *HEADERS_100, body=b"ok"), Seen(200, b"ok", header="98"), header="X-H98"
    ),
    "101-header-lines": Case(
        answer(200, *HEADERS_100, "X-H99: 99", body=b"ok"),
        Seen(0, error="invalid response: head too large"),
    ),
    "a-1-mb-head": Case(  # where each stops, about MAX_HEAD_BYTES, differs by a read
        answer(200, "X-Big: " + "a" * 1_000_000, body=b"ok"),
        Seen(0, error="invalid response: head too large"),
    ),
    # RFC 9112 §6.3: both "ought to be handled as an error" (request smuggling, response splitting)
    "content-length-and-chunked": Case(
        raw("HTTP/1.1 200 OK", "Content-Length: 2", "Transfer-Encoding: chunked")
        + b"2\r\nok\r\n0\r\n\r\n",
        Seen(0, error="invalid response: Content-Length with Transfer-Encoding"),
    ),
    # RFC 9112 §5.2: a user agent MUST replace an obs-fold with SP before reading the value
    "an-obs-folded-header": Case(
        raw("HTTP/1.1 200 OK", "X-Fold: a", " b", "Content-Length: 2", body=b"ok"),
        Seen(200, b"ok", header="a b"),
        header="X-Fold",
    ),
    "an-obs-fold-after-300-kib-of-head": Case(  # the head arrives in more than one read
        raw("HTTP/1.1 200 OK", "X-Big: " + "a" * 300_000, "X-Fold: a", " b", "Content-Length: 2")
        + b"ok",
        Seen(200, b"ok", header="a b"),
        header="X-Fold",
    ),
    # RFC 9112 §6.3: the body is Content-Length bytes; what follows is not taken for an answer
    "a-body-longer-than-content-length": Case(
        answer(200, body=b"ok")[:-2] + b"ok and more",
        OK,
        differs={"aiohttp": Seen(0, error="invalid response: bad status line")},
    ),
    # RFC 9112 §6.3: a Transfer-Encoding that does not end in chunked: read to the close
    "a-transfer-encoding-read-to-the-close": Case(
        Closing(raw("HTTP/1.1 200 OK", "Transfer-Encoding: identity", body=b"ok")), OK
    ),
    # where the clients' parsers differ and no setting of theirs makes them agree (seam.py)
    "a-control-character-in-a-header-value": Case(
        answer(200, "X-A: a\x01b", body=b"ok"),
        Seen(0, error="invalid response: bad header"),
        differs={"aiohttp": OK},  # its parser is lenient
    ),
    "a-repeated-content-length-of-one-value": Case(
        raw("HTTP/1.1 200 OK", "Content-Length: 2", "Content-Length: 2") + b"ok",
        Seen(0, error="invalid response: bad Content-Length"),
        differs={"reqwest": OK},  # hyper takes it, llhttp does not
    ),
    "an-http-2.0-status-line": Case(
        answer(200, body=b"ok").replace(b"HTTP/1.1", b"HTTP/2.0", 1),
        OK,
        differs={"reqwest": Seen(0, error="invalid response: bad status line")},
    ),
    # a 101 nobody asked for is the answer (as http.client reads it); its connection is not reused
    "an-unrequested-101": Case(
        raw("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade"),
        Seen(101, header="websocket"),
        header="Upgrade",
    ),
}


@pytest.mark.parametrize("case", D16_CASES.values(), ids=D16_CASES.keys())
def test_d16_every_client_meets_one_outcome(case: Case, http_client: str, console: Console) -> None:
    with RawServer({"/case": case.script}) as server:
        seen = look(server, "/case", http_client, console, case.header)
    assert seen == [case.differs.get(http_client, case.seen)] * TIMES


def test_d16_a_cookie_set_with_a_past_expires_is_not_sent_back(
    http_client: str, console: Console
) -> None:
    """RFC 6265 §5.3: already expired, it is not kept (aiohttp's own jar kept it)."""
    script = {"/set": answer(200, f"Set-Cookie: old=1; Expires={PAST}; Path=/"), "/check": OK_BYTES}
    with RawServer(script) as server:
        assert_every_served_request_counted(
            server, load(server, ["/set", "/check"], http_client, console)
        )
    assert [request.cookies() for request in server.on("/check")] == [{}] * TIMES


@pytest.mark.parametrize(
    ("method", "body", "length", "content_type"),
    [
        ("POST", {}, "0", None),
        ("PUT", {}, "0", None),
        ("PATCH", {}, "0", None),
        ("POST", {"data": b""}, "0", "application/octet-stream"),
        ("GET", {}, None, None),
        ("DELETE", {}, None, None),
        ("POST", {"data": b"x"}, "1", "application/octet-stream"),
    ],
    ids=["post", "put", "patch", "post-empty-data", "get", "delete", "post-data"],
)
def test_d16_a_request_is_framed_alike(
    method: str,
    body: dict[str, Any],
    length: str | None,
    content_type: str | None,
    http_client: str,
    console: Console,
) -> None:
    """RFC 9110 §8.6: Content-Length: 0 on a body-less POST, PUT or PATCH (411 on some servers
    without it), none on a GET; Content-Type only with a body. gzip and deflate are asked for,
    what every client decodes."""
    if (http_client, method) == ("aiohttp", "DELETE"):
        length = "0"  # aiohttp's own rule: every method but GET, HEAD, OPTIONS and TRACE
    with RawServer({"/x": OK_BYTES}) as server:
        assert look(server, "/x", http_client, console, method=method, **body) == [OK] * TIMES
    for received in server.received:
        assert received.header("Content-Length") == length
        assert received.header("Content-Type") == content_type
        assert received.header("Accept-Encoding") == "gzip, deflate"


# --- D4: a header value beyond ASCII ------------------------------------------------------------
OBS_TEXT = raw(
    "HTTP/1.1 200 OK",
    'Content-Disposition: attachment; filename="café.pdf"',
    "Content-Type: text/plain; name=café",
    "Content-Length: 2",
    body=b"ok",
)


def test_d4_a_header_value_beyond_ascii_never_raises(http_client: str, console: Console) -> None:
    """Read as latin-1, as http.client and aiohttp read it; pyreqwest gives neither text nor
    bytes for it, so reqwest reads it as empty (seam.py's docstring)."""
    with RawServer({"/file": OBS_TEXT}) as server:
        seen = look(server, "/file", http_client, console, "Content-Disposition")
    value = "" if http_client == "reqwest" else 'attachment; filename="café.pdf"'
    assert seen == [Seen(200, b"ok", header=value)] * TIMES


# --- D10: one text for each kind of failure ---------------------------------------------------
BAD_STATUS_LINE = "invalid response: bad status line"
BAD_HEADER = "invalid response: bad header"
BAD_CONTENT_LENGTH = "invalid response: bad Content-Length"
FAILURES = {
    "not-http": (b"garbage\r\n\r\n", BAD_STATUS_LINE),
    "a-status-code-not-a-number": (answer(200).replace(b"200", b"2x0", 1), BAD_STATUS_LINE),
    "a-status-code-of-four-digits": (answer(200).replace(b"200", b"1000", 1), BAD_STATUS_LINE),
    "a-header-line-without-a-colon": (answer(200, "Foo", body=b"ok"), BAD_HEADER),
    "a-nul-in-a-header-value": (answer(200, "X-A: a\x00b", body=b"ok"), BAD_HEADER),
    "a-cr-in-a-header-value": (answer(200, "X-A: a\rb", body=b"ok"), BAD_HEADER),
    "a-content-length-not-a-number": (
        raw("HTTP/1.1 200 OK", "Content-Length: x"),
        BAD_CONTENT_LENGTH,
    ),
    "two-content-lengths": (
        raw("HTTP/1.1 200 OK", "Content-Length: 2", "Content-Length: 3") + b"ok",
        BAD_CONTENT_LENGTH,
    ),
    "a-chunk-size-not-a-number": (
        raw("HTTP/1.1 200 OK", "Transfer-Encoding: chunked") + b"zz\r\nok\r\n0\r\n\r\n",
        "response payload incomplete",
    ),
    "a-body-cut-short": (Closing(answer(200, body=b"1234")[:-2]), "response payload incomplete"),
    "a-gzip-body-that-is-not": (
        answer(200, "Content-Encoding: gzip", body=b"ok"),
        "response payload incomplete",
    ),
    "a-head-cut-short": (Closing(b"HTTP/1.1 200 OK\r\nX-Partial: a"), "server disconnected"),
    "no-answer-at-all": (Closing(b""), "server disconnected"),
}


@pytest.mark.parametrize(("script", "error"), FAILURES.values(), ids=FAILURES.keys())
def test_d10_a_failure_reads_alike_from_every_client(
    script: bytes, error: str, http_client: str, console: Console
) -> None:
    """No library's wording, no URL, no status the server never sent: status 0 and the text."""
    with RawServer({"/bad": script}) as server:
        assert look(server, "/bad", http_client, console) == [Seen(0, error=error)] * TIMES


def test_d10_a_hundred_urls_of_one_name_failing_alike_are_one_error_row(
    http_client: str, console: Console
) -> None:
    paths = [f"/item/{i}" for i in range(100)]

    class Items(TaskSet):
        @task
        async def items(self) -> None:
            for path in paths:
                await self.get(f"{path}?id={path[6:]}", name="/item")

    with RawServer(dict.fromkeys(paths, b"garbage\r\n\r\n")) as server:
        result = run(Items, server, http_client, console)
        metrics = assert_every_served_request_counted(server, result)
    assert metrics.errors == {f"GET /item: {BAD_STATUS_LINE}": 100 * TIMES}


# --- D11: the request target on the wire ------------------------------------------------------
TARGETS = [  # (the URL's path as a task writes it, the request target every client sends)
    ("/a b", "/a%20b"),
    ("/ünï", "/%C3%BCn%C3%AF"),
    ("/?q=é", "/?q=%C3%A9"),
    ("/%41%2f?q=%c3%a9", "/%41%2f?q=%c3%a9"),  # escapes kept as written
    ("/100%", "/100%"),  # a % that starts no escape, as the WHATWG standard keeps it
    ("/a/../b/./c", "/b/c"),  # RFC 3986 §5.2.4, as curl, reqwest and aiohttp do
    ("/a/%2e%2E/b", "/b"),
    ("/x?y=1#top", "/x?y=1"),
    # the WHATWG path and special-query percent-encode sets; a path's \\ is a /
    ('/a|b{c}^\\[d]`"<>', "/a|b%7Bc%7D^/[d]%60%22%3C%3E"),
    ("/?q=it's a|b{c}`\"", "/?q=it%27s%20a|b{c}`%22"),
    ("/~!$&'()*+,;=:@/", "/~!$&'()*+,;=:@/"),  # what RFC 3986 allows in a path, as written
    ("/search?q=a+b&next=/x?y", "/search?q=a+b&next=/x?y"),
]


def test_d11_the_request_target_is_percent_encoded_alike(http_client: str) -> None:
    async def send_each(url: str) -> list[tuple[int, str]]:
        client = CLIENTS[http_client]()
        try:
            exchanges = [
                await client.send("GET", url + path, RequestOptions()) for path, _ in TARGETS
            ]
        finally:
            await client.close()
        return [(exchange.status, exchange.final_url) for exchange in exchanges]

    with RawServer({}) as server:
        records = asyncio.run(send_each(server.url))
        server.settle()
    sent = [request.target for request in server.received]
    assert sent == [target for _, target in TARGETS]
    assert records == [(404, server.url + target) for _, target in TARGETS]


def test_d11_a_url_with_nothing_to_escape_is_sent_as_it_is() -> None:
    """The fast path: such a URL is the very string the task gave (no copy, no parse); and a URL
    once escaped is escaped no further (a redirect's hop is escaped again by its client)."""
    for url in ("http://127.0.0.1:8080/", "http://[::1]:80/a/b?x=1&y=%20z|^[]", "https://h/a.b/c"):
        assert wire_url(url) is url
    for path, target in TARGETS:
        url = f"http://h{path}"
        assert wire_url(wire_url(url)) == wire_url(url) == f"http://h{target}"
