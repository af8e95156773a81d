"""The three HTTP clients against go-httpbin, a server nobody here wrote: each case has one
expected outcome, written once, that httptools, reqwest and aiohttp all meet.

A case is a few requests a task sends in turn, as a user's test would (``Attack.run_async``,
USERS users × ITERATIONS passes, each user with its own jar), each with what its record says
(status, success or failure, the failure's one normalised text) and what the task reads off the
response (body, headers, the cookies go-httpbin saw). In every case, first the invariant: **the
requests go-httpbin logged equal Gaggle's count** (each record × the hops of its redirect chain),
then no task failed and the run ended by its iterations. A last test sends many URLs under one
name for each kind of failure: one row each in the errors table.

Where the RFCs leave room, curl is the referee: POST turned to a body-less GET on 301/302/303 and
kept on 307/308; interim 1xx answers skipped; headers as the server sent them (a value's bytes
read as latin-1, Content-Encoding kept after decoding); a body short of its Content-Length or
not the gzip it claims fails. Where curl is not: a chain's 10th redirect fails it (aiohttp's
limit, Gaggle's documented one; curl 7.88 follows 50); URLs are percent-encoded as the WHATWG URL
standard, reqwest and browsers write them (curl 7.88 refuses a space and sends a query's UTF-8
raw); an empty POST says Content-Length: 0 (RFC 9110 §8.6; curl -d '' does, -X POST does not).
go-httpbin serves no brotli (``/brotli`` is 501) nor zstd, and its /status/101 is no upgrade:
those stay with the raw servers of test_hostile_servers.py.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from rich.console import Console

from gaggle import Attack, Response, RunResult, TaskSet, task
from tests.support.httpbin import HttpBin

USERS, ITERATIONS = 2, 2
EACH = USERS * ITERATIONS  # records per step of a case
TOO_MANY_REDIRECTS = "too many redirects"
TIMEOUT = "timeout"
PAYLOAD_INCOMPLETE = "response payload incomplete"
HEAD_TOO_LARGE = "invalid response: head too large"  # more header lines than hyper reads

Look = Callable[[Response], object]  # what the task reads off a response


def path_of(url: str) -> str:
    """A URL without its scheme and host: the same in every case whatever port go-httpbin has."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def nothing(response: Response) -> object:
    return None


def body(response: Response) -> object:
    return response.body


def landed(response: Response) -> tuple[str, bool]:
    """Where a chain ended and whether it was redirected."""
    return path_of(response.url), response.redirected


def failure(response: Response) -> object:
    """A failed record: status 0, the text, the URL asked for (not a hop's), not redirected."""
    return response.status, response.error, path_of(response.url), response.redirected


def cookies_after(response: Response) -> object:
    """A chain that ends on /cookies: where, and the cookies the jar sent there."""
    return path_of(response.url), response.redirected, response.json()["cookies"]


def jar(response: Response) -> object:
    cookies: object = response.json()["cookies"]
    return cookies


def echoed(response: Response) -> object:
    """What /anything saw of a request: method, body and Content-Type, where it landed."""
    echo = response.json()
    return echo["method"], echo["data"], echo["headers"].get("Content-Type"), path_of(echo["url"])


def echoed_url(response: Response) -> object:
    url: str = response.json()["url"]
    return path_of(url)


@dataclass(frozen=True)
class Step:
    """One request of a case and its one expected outcome."""

    method: str
    path: str
    status: int  # the recorded status (0: no response)
    sees: object  # what ``look`` reads off the response
    look: Look = nothing
    error: str = ""  # the failure text; "" and a 2xx/3xx status: a success
    served: int = 1  # requests go-httpbin serves for this one record (a redirect chain's hops)
    options: Mapping[str, Any] = field(default_factory=dict)  # self.request's keywords
    logged: int | None = None  # the status go-httpbin logs for it, when it says more
    name: str = ""  # the request's name in the tables: its path unless given
    # what a client that cannot meet ``sees`` reads instead (seam.py's docstring says why)
    unlike: Mapping[str, object] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name or self.path

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 400 and not self.error

    @property
    def error_row(self) -> str:
        return f"{self.method} {self.label}: {self.error or f'status {self.status}'}"


def get(path: str, status: int, sees: object, look: Look = nothing, **more: Any) -> Step:
    return Step("GET", path, status, sees, look, **more)


def redirect_to(code: int, method: str = "POST") -> Step:
    """A request with a body, redirected by ``code`` to /anything, which echoes what arrived:
    303 turns it into a GET without it, 301 and 302 only a POST (as curl: RFC 9110 §15.4)."""
    kept = code in (307, 308) or (code in (301, 302) and method != "POST")
    return Step(
        method,
        f"/redirect-to?url=/anything&status_code={code}",
        200,
        (method, "payload", ["text/plain; charset=utf-8"], "/anything")
        if kept
        else ("GET", "", None, "/anything"),
        echoed,
        served=2,
        options={"data": "payload"},
    )


def headers_named(*names: str) -> Look:
    def look(response: Response) -> object:
        return [response.headers.getall(name) for name in names]

    return look


MANY = 90  # with go-httpbin's own five: under the 100 that hyper stops at
OVER_100 = 150  # curl reads them all; hyper cannot, so none does (seam.MAX_HEADERS)


def many_headers(count: int) -> Step:
    """/response-headers answering ``count`` lines X-Many-0: 0 …, each read by the task."""
    query = "&".join(f"X-Many-{i}={i}" for i in range(count))

    def look(response: Response) -> object:
        return [response.headers.get(f"X-Many-{i}") for i in range(count)]

    expected = [str(i) for i in range(count)]
    return get(f"/response-headers?{query}", 200, expected, look, name=f"{count} headers")


# x%2Fy: Go echoes a path's escapes as sent only when all of it is escaped; a raw ü would
# make it echo x/y, so the echo tells a path sent raw from one sent percent-encoded
SPACES_AND_UTF8 = "/anything/a b/ünï/x%2Fy?q=é&x=a b"

CASES: dict[str, tuple[Step, ...]] = {
    # --- cookies: what /cookies/set and /cookies/delete set, /cookies shows the jar sending
    "cookies-set-then-sent": (
        get(
            "/cookies/set?a=1&b=2",
            200,
            ("/cookies", True, {"a": "1", "b": "2"}),
            cookies_after,
            served=2,
        ),
        get("/cookies", 200, {"a": "1", "b": "2"}, jar),
    ),
    "cookies-deleted": (
        get(
            "/cookies/set?a=1&b=2",
            200,
            ("/cookies", True, {"a": "1", "b": "2"}),
            cookies_after,
            served=2,
        ),
        get("/cookies/delete?a", 200, ("/cookies", True, {"b": "2"}), cookies_after, served=2),
        get("/cookies", 200, {"b": "2"}, jar),
    ),
    "cookies-set-by-a-redirect-not-followed": (
        get(
            "/cookies/set?c=3",
            302,
            [["c=3; Path=/; HttpOnly"], ["/cookies"]],
            headers_named("Set-Cookie", "Location"),
            options={"allow_redirects": False},
        ),
        get("/cookies", 200, {"c": "3"}, jar),
    ),
    "a-set-cookie-among-response-headers": (
        get(
            "/response-headers?X-Dup=1&X-Dup=2&Set-Cookie=r%3D1",
            200,
            [["1", "2"], ["r=1"]],
            headers_named("X-Dup", "Set-Cookie"),
        ),
        get("/cookies", 200, {"r": "1"}, jar),
    ),
    # --- redirects: every kind go-httpbin sends; the chain is one record of its last answer
    "redirect-3": (get("/redirect/3", 200, ("/get", True), landed, served=4),),
    "relative-redirect-3": (get("/relative-redirect/3", 200, ("/get", True), landed, served=4),),
    "absolute-redirect-3": (get("/absolute-redirect/3", 200, ("/get", True), landed, served=4),),
    "a-head-through-redirects-stays-head": (
        Step(
            "HEAD",
            "/redirect/2",
            200,
            ("/get", True, b""),
            lambda r: (*landed(r), r.body),
            served=3,
        ),
    ),
    **{f"post-redirected-by-{code}": (redirect_to(code),) for code in (301, 302, 303, 307, 308)},
    **{f"put-redirected-by-{code}": (redirect_to(code, "PUT"),) for code in (302, 303)},
    "the-longest-chain-followed": (get("/redirect/9", 200, ("/get", True), landed, served=10),),
    "one-redirect-too-many": (
        get(
            "/redirect/10",
            0,
            (0, TOO_MANY_REDIRECTS, "/redirect/10", False),
            failure,
            error=TOO_MANY_REDIRECTS,
            served=10,
        ),
    ),
    "a-long-absolute-chain-stops-at-the-limit": (
        get(
            "/absolute-redirect/50",
            0,
            (0, TOO_MANY_REDIRECTS, "/absolute-redirect/50", False),
            failure,
            error=TOO_MANY_REDIRECTS,
            served=10,
        ),
    ),
    # --- bodies as the task reads them: decoded, streamed, partial, large, none
    "gzip": (
        get(
            "/gzip",
            200,
            (True, "gzip"),
            lambda r: (r.json()["gzipped"], r.headers["Content-Encoding"]),
        ),
    ),
    "deflate": (
        get(
            "/deflate",
            200,
            (True, "deflate"),
            lambda r: (r.json()["deflated"], r.headers["Content-Encoding"]),
        ),
    ),
    "stream-lines": (
        get(
            "/stream/5",
            200,
            [0, 1, 2, 3, 4],
            lambda r: [json.loads(line)["id"] for line in r.text.splitlines()],
        ),
    ),
    "stream-bytes-chunked": (
        get("/stream-bytes/100000?chunk_size=1000", 200, 100000, lambda r: len(r.body)),
    ),
    "drip": (get("/drip?numbytes=10&duration=0.1&delay=0", 200, b"*" * 10, body),),
    "range": (
        get(
            "/range/100",
            206,
            (b"klmnopqrst", "bytes 10-19/100"),
            lambda r: (r.body, r.headers["Content-Range"]),
            options={"headers": {"Range": "bytes=10-19"}},
        ),
    ),
    "five-megabytes": (
        get(
            "/bytes/5000000",
            200,
            (5000000, "5000000"),
            lambda r: (len(r.body), r.headers["Content-Length"]),
        ),
    ),
    "head-has-no-body-whatever-content-length-says": (
        Step(
            "HEAD",
            "/bytes/1000",
            200,
            (b"", "1000"),
            lambda r: (r.body, r.headers["Content-Length"]),
        ),
        get("/get", 200, "/get", lambda r: path_of(r.json()["url"])),  # the connection goes on
    ),
    # --- statuses: no body, interim answers skipped, failures by status
    "204-then-the-connection-goes-on": (
        get("/status/204", 204, b"", body),
        get("/get", 200, "/get", lambda r: path_of(r.json()["url"])),
    ),
    "304": (get("/status/304", 304, b"", body),),
    **{
        f"interim-{code}-skipped": (get(f"/status/{code}", 200, b"", body),)
        for code in (100, 102, 103)
    },
    "404": (get("/status/404", 404, b"", body),),
    "503": (get("/status/503", 503, b"", body),),
    # --- bodies that are not what their headers say: curl fails them (exit 18, 61)
    "a-body-shorter-than-its-content-length": (
        get(
            "/response-headers?Content-Length=100000",
            0,
            (0, PAYLOAD_INCOMPLETE, "/response-headers?Content-Length=100000", False),
            failure,
            error=PAYLOAD_INCOMPLETE,
            name="short body",
        ),
    ),
    "a-body-that-is-not-the-gzip-it-claims": (
        get(
            "/response-headers?Content-Encoding=gzip",
            0,
            (0, PAYLOAD_INCOMPLETE, "/response-headers?Content-Encoding=gzip", False),
            failure,
            error=PAYLOAD_INCOMPLETE,
            name="not gzip",
        ),
    ),
    # --- a stall past a short timeout: one failure, served once (go-httpbin saw the client go)
    "a-stall-past-the-timeout": (
        get(
            "/delay/2",
            0,
            (0, TIMEOUT, "/delay/2", False),
            failure,
            error=TIMEOUT,
            options={"timeout": 0.3},
            logged=499,
        ),
    ),
    # --- URLs: what reached go-httpbin, as it echoes the request's URL
    "spaces-and-utf-8-percent-encoded": (
        get(
            SPACES_AND_UTF8, 200, "/anything/a%20b/%C3%BCn%C3%AF/x%2Fy?q=%C3%A9&x=a%20b", echoed_url
        ),
    ),
    "escapes-kept": (
        get("/anything/100%25?x=%2F%20", 200, "/anything/100%25?x=%2F%20", echoed_url),
    ),
    "params-as-a-form-encodes-them": (
        get(
            "/anything",
            200,
            "/anything?q=%C3%A9+%C3%BC&k=a%2Bb",
            echoed_url,
            options={"params": {"q": "é ü", "k": "a+b"}},
        ),
    ),
    "a-post-body-arrives-as-sent": (
        Step(
            "POST",
            "/anything",
            200,
            ("POST", "payload", ["text/plain; charset=utf-8"], "/anything"),
            echoed,
            options={"data": "payload"},
        ),
    ),
    "an-empty-post-says-content-length-0": (  # RFC 9110 §8.6 (curl -d '' does; -X POST not)
        Step("POST", "/post", 200, ["0"], lambda r: r.json()["headers"].get("Content-Length")),
    ),
    # --- response headers: many, repeated, beyond ASCII
    "many-headers": (many_headers(MANY),),
    "more-than-100-headers": (  # as http.client: served, and failed with one text
        get(
            "/response-headers?" + "&".join(f"X-Many-{i}={i}" for i in range(OVER_100)),
            0,
            None,
            error=HEAD_TOO_LARGE,
            name=f"{OVER_100} headers",
        ),
    ),
    "an-unknown-charset-reads-as-utf-8": (  # as browsers: a typo never raises into the task
        get(
            "/response-headers?Content-Type=text/plain%3B%20charset%3Dno-such",
            200,
            ["text/plain; charset=no-such"],
            lambda r: json.loads(r.text)["Content-Type"],
        ),
    ),
    "a-utf-8-header-value-read-as-latin-1": (  # as http.client, aiohttp and curl's bytes
        get(
            "/response-headers?X-Name=caf%C3%A9",
            200,
            ("cafÃ©", ["café"]),
            lambda r: (r.headers["X-Name"], json.loads(r.text)["X-Name"]),
            # pyreqwest gives such a value neither as text nor as bytes: read as empty, never
            # raising (review D4; test_agreement.py's test_d4_...)
            unlike={"reqwest": ("", ["café"])},
        ),
    ),
}


def run(taskset: type[TaskSet], server: HttpBin, http_client: str, console: Console) -> RunResult:
    return asyncio.run(
        Attack(taskset).run_async(
            console=console,
            host=server.url,
            http_client=http_client,
            users=USERS,
            hatch_rate=1000,
            iterations=ITERATIONS,
            run_time=30,
            no_reset_metrics=True,
        )
    )


def walk(steps: tuple[Step, ...], seen: list[tuple[int, object]]) -> type[TaskSet]:
    """A task set whose one task sends ``steps`` in turn and keeps what it read off each."""

    class Walk(TaskSet):
        @task
        async def walk(self) -> None:
            for index, step in enumerate(steps):
                response = await self.request(
                    step.method, step.path, name=step.label, **step.options
                )
                seen.append((index, step.look(response)))

    return Walk


@pytest.mark.parametrize("steps", CASES.values(), ids=CASES.keys())
def test_go_httpbin_answers_every_client_alike_and_every_request_is_counted(
    steps: tuple[Step, ...], http_client: str, console: Console
) -> None:
    assert len({(step.method, step.label) for step in steps}) == len(steps)  # one row each
    seen: list[tuple[int, object]] = []
    with HttpBin() as server:
        result = run(walk(steps, seen), server, http_client, console)
        metrics = result.all_metrics()
        counted = {key: stats.count for key, stats in metrics.requests.items()}
        expected = sum(counted.get((s.method, s.label), 0) * s.served for s in steps)
        served = server.settle(at_least=EACH * sum(step.served for step in steps))
        assert served == expected, (
            f"go-httpbin served {served} requests, Gaggle counted {counted} "
            f"(× hops {[step.served for step in steps]}); errors: {metrics.errors}"
        )
        requests = server.requests
    assert [stats.fail_count for stats in metrics.tasks.values()] == [0], metrics.errors
    assert result.stopped_by == f"every user ran its {ITERATIONS} iteration(s)"
    assert counted == {(step.method, step.label): EACH for step in steps}
    for step in steps:
        stats = metrics.requests[(step.method, step.label)]
        assert (stats.status_codes, stats.fail_count) == (
            {step.status: EACH},
            0 if step.ok else EACH,
        ), step.label
    failing = {step.error_row: EACH for step in steps if not step.ok}
    assert metrics.errors == failing
    for index, step in enumerate(steps):
        sees = step.unlike.get(http_client, step.sees)
        assert [value for i, value in seen if i == index] == [sees] * EACH, step.label
        if step.logged is not None:
            logged = [served.status for served in requests if served.uri == step.path]
            assert logged == [step.logged] * EACH, step.label


# one kind of failure, one row: what varies between the URLs of one request name is not in it
FAILURE_KINDS = {  # name: (path with a {n} that makes each URL new, options, text, hops)
    "short body": ("/response-headers?Content-Length=100000&n={n}", {}, PAYLOAD_INCOMPLETE, 1),
    "not gzip": ("/response-headers?Content-Encoding=gzip&n={n}", {}, PAYLOAD_INCOMPLETE, 1),
    "stall": ("/delay/2?n={n}", {"timeout": 0.3}, TIMEOUT, 1),
    "loop": ("/redirect/10?n={n}", {}, TOO_MANY_REDIRECTS, 10),
    "missing": ("/status/404?n={n}", {}, "status 404", 1),
}


def test_failures_of_one_kind_are_one_row_whatever_their_urls(
    http_client: str, console: Console
) -> None:
    numbers = itertools.count()

    class Distinct(TaskSet):
        @task
        async def each_kind(self) -> None:
            for name, (path, options, _, _) in FAILURE_KINDS.items():
                await self.get(path.format(n=next(numbers)), name=name, **options)

    with HttpBin() as server:
        result = run(Distinct, server, http_client, console)
        hops = sum(kind[3] for kind in FAILURE_KINDS.values())
        served = server.settle(at_least=EACH * hops)
        assert len({request.uri for request in server.requests}) > EACH * len(FAILURE_KINDS)
    metrics = result.all_metrics()
    counted = sum(stats.count for stats in metrics.requests.values())
    assert counted == EACH * len(FAILURE_KINDS)
    assert served == EACH * hops, f"go-httpbin served {served}; errors: {metrics.errors}"
    assert metrics.errors == {
        f"GET {name}: {text}": EACH for name, (_, _, text, _) in FAILURE_KINDS.items()
    }
