"""The three HTTP clients under load against a raw server that says what ordinary servers say
and no library here wrote: Set-Cookie lines a jar must ignore or apply silently (the review's
D1) and redirects whose Location is not a URL it can follow (D5).

Each case runs a load test through each client (``http_client``) against
``tests/support/raw_server.py`` and checks the promise first: **the server's count of requests
equals Gaggle's**, no task failed (a client never raises into a task), and the run ended by its
iterations, not its time. Then what the server received: which cookies came back on which
request (RFC 6265 §5.2–5.4), and what the record of a redirect that cannot be followed says.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import ClassVar

import pytest
from rich.console import Console

from gaggle import Attack, RunResult, TaskSet, task
from gaggle.metrics.aggregate import Metrics
from tests.support.raw_server import RawServer, answer

USERS, ITERATIONS = 2, 3  # each user has its own jar; three passes: what a jar keeps carries over
PAST = "Thu, 01 Jan 1970 00:00:00 GMT"
OK = answer(200, body=b"ok")


def set_cookie(*values: str) -> bytes:
    return answer(200, *(f"Set-Cookie: {value}" for value in values), body=b"ok")


def run(
    taskset: type[TaskSet],
    server: RawServer,
    http_client: str,
    console: Console,
    users: int = USERS,
    iterations: int = ITERATIONS,
) -> RunResult:
    """``users`` users each run ``taskset`` ``iterations`` times (and within 30 s)."""
    return asyncio.run(
        Attack(taskset).run_async(
            console=console,
            host=server.url,
            http_client=http_client,
            users=users,
            hatch_rate=1000,
            iterations=iterations,
            run_time=30,
            no_reset_metrics=True,
        )
    )


def load(server: RawServer, paths: list[str], http_client: str, console: Console) -> RunResult:
    """USERS users each GET ``paths`` in turn, ITERATIONS times."""

    class Walk(TaskSet):
        @task
        async def walk(self) -> None:
            for path in paths:
                await self.get(path)

    return run(Walk, server, http_client, console)


def counted(metrics: Metrics) -> int:
    return sum(stats.count for stats in metrics.requests.values())


def assert_every_served_request_counted(
    server: RawServer, result: RunResult, hops: int = 1
) -> Metrics:
    """The invariant, and that the run ended by its iterations with no task failed; ``hops``:
    the requests the server serves for each one Gaggle records (a redirect chain is one)."""
    server.settle()
    metrics = result.all_metrics()
    assert counted(metrics) * hops == server.served, (
        f"the server served {server.served} requests, Gaggle counted {counted(metrics)}"
        f" (× {hops} hops each); errors: {metrics.errors}"
    )
    assert [stats.fail_count for stats in metrics.tasks.values()] == [0], metrics.errors
    assert result.stopped_by == f"every user ran its {ITERATIONS} iteration(s)"
    return metrics


# --- D1: Set-Cookie ---------------------------------------------------------------------------
@dataclass(frozen=True)
class CookieCase:
    """What the server answers on each path, and the paths requested in turn, each with the
    cookies the server must receive on it (in every pass: what a pass sets, the next sees)."""

    script: dict[str, bytes]
    steps: tuple[tuple[str, dict[str, str] | None], ...]  # None: not checked


def ignored(*values: str) -> CookieCase:
    """A Set-Cookie the jar must ignore (or that deletes nothing): nothing comes back."""
    return CookieCase({"/set": set_cookie(*values), "/check": OK}, (("/set", {}), ("/check", {})))


COOKIE_CASES = {
    # a logout (or PHP/Django clearing cookies) for a cookie this user never held
    "max-age-0-for-a-cookie-not-held": ignored("gone=1; Max-Age=0; Path=/"),
    "a-negative-max-age": ignored("gone=1; Max-Age=-1"),
    "a-past-expires": ignored(f"old=1; Expires={PAST}; Path=/"),
    "a-domain-of-another-site": ignored("other=1; Domain=.example.com; Path=/"),
    "another-site-without-the-dot": ignored("other=1; Domain=example.com"),
    "an-empty-name": ignored("=v"),
    "a-blank-name": ignored(" =v; Path=/"),
    "no-equals-sign": ignored("novalue"),
    "an-empty-line": ignored(""),
    # the lines a jar ignores do not cost the ones beside them
    "ignored-lines-beside-a-good-one": CookieCase(
        {
            "/set": set_cookie(
                "gone=1; Max-Age=0", "=v", "novalue", "other=1; Domain=.example.com", "ok=1"
            ),
            "/check": OK,
        },
        (("/set", None), ("/check", {"ok": "1"})),  # /set: ok=1 from the second pass on
    ),
    # a cookie, then its deletion: the request after it no longer sends it
    "login-then-logout-by-max-age-0": CookieCase(
        {
            "/login": set_cookie("sid=abc; Path=/; HttpOnly"),
            "/check": OK,
            "/logout": set_cookie("sid=; Max-Age=0; Path=/"),
            "/after": OK,
        },
        (("/login", {}), ("/check", {"sid": "abc"}), ("/logout", {"sid": "abc"}), ("/after", {})),
    ),
    "login-then-logout-by-a-past-expires": CookieCase(
        {
            "/login": set_cookie("sid=abc; Path=/"),
            "/check": OK,
            "/logout": set_cookie(f"sid=deleted; Expires={PAST}; Path=/"),
            "/after": OK,
        },
        (("/login", {}), ("/check", {"sid": "abc"}), ("/logout", {"sid": "abc"}), ("/after", {})),
    ),
    # the other two date formats RFC 9110 accepts, as PHP and old servers write them
    "login-then-logout-by-an-rfc-850-date": CookieCase(
        {
            "/login": set_cookie("sid=abc; Path=/"),
            "/logout": set_cookie("sid=deleted; Expires=Thursday, 01-Jan-70 00:00:01 GMT; Path=/"),
            "/after": OK,
        },
        (("/login", {}), ("/logout", {"sid": "abc"}), ("/after", {})),
    ),
    "login-then-logout-by-an-asctime-date": CookieCase(
        {
            "/login": set_cookie("sid=abc; Path=/"),
            "/logout": set_cookie("sid=deleted; Expires=Thu Jan  1 00:00:01 1970; Path=/"),
            "/after": OK,
        },
        (("/login", {}), ("/logout", {"sid": "abc"}), ("/after", {})),
    ),
    # Max-Age wins over Expires (§5.3 step 3): kept for an hour whatever the date says
    "max-age-over-a-past-expires": CookieCase(
        {"/set": set_cookie(f"kept=1; Max-Age=3600; Expires={PAST}; Path=/"), "/check": OK},
        (("/set", None), ("/check", {"kept": "1"})),
    ),
    # values go back as the server wrote them, unquoted (aiohttp's own jar quotes some)
    "values-as-set": CookieCase(
        {"/set": set_cookie("empty=; Path=/", "eq=a=b; Path=/"), "/check": OK},
        (("/set", None), ("/check", {"empty": "", "eq": "a=b"})),
    ),
    # Secure: loopback is a secure context (as for curl and browsers), so it comes back here
    "a-secure-cookie-on-loopback": CookieCase(
        {"/set": set_cookie("safe=1; Secure; Path=/"), "/check": OK},
        (("/set", None), ("/check", {"safe": "1"})),
    ),
    # Path=/app: sent to /app and below it, not to / or /apple (§5.1.4's path-match)
    "a-path-scoped-cookie": CookieCase(
        {
            "/login": set_cookie("scoped=1; Path=/app"),
            "/app": OK,
            "/app/page": OK,
            "/apple": OK,
            "/other": OK,
        },
        (
            ("/login", {}),
            ("/app", {"scoped": "1"}),
            ("/app/page", {"scoped": "1"}),
            ("/apple", {}),
            ("/other", {}),
        ),
    ),
    # no Path: the default path is the request's directory (§5.1.4), /dir here
    "the-default-path": CookieCase(
        {"/dir/set": set_cookie("here=1"), "/dir/page": OK, "/top": OK},
        (("/dir/set", None), ("/dir/page", {"here": "1"}), ("/top", {})),
    ),
}


@pytest.mark.parametrize("case", COOKIE_CASES.values(), ids=COOKIE_CASES.keys())
def test_set_cookie_lines_are_kept_as_rfc_6265_says_and_every_request_counted(
    case: CookieCase, http_client: str, console: Console
) -> None:
    with RawServer(case.script) as server:
        paths = [path for path, _ in case.steps]
        result = load(server, paths, http_client, console)
        metrics = assert_every_served_request_counted(server, result)
        assert server.served == USERS * ITERATIONS * len(paths)
        assert metrics.errors == {}
        for path, cookies in case.steps:
            if cookies is None:
                continue
            seen = [request.cookies() for request in server.on(path)]
            assert seen == [cookies] * USERS * ITERATIONS, path


class OwnCookie(TaskSet):
    """A task that sets its own Cookie header after the server set one."""

    @task
    async def mine(self) -> None:
        await self.get("/login")
        await self.get("/check", headers={"Cookie": "mine=1"})
        await self.get("/after")


def test_a_task_s_own_cookie_header_is_sent_instead_of_the_jar_s(
    http_client: str, console: Console
) -> None:
    script = {"/login": set_cookie("sid=abc; Path=/"), "/check": OK, "/after": OK}
    with RawServer(script) as server:
        assert_every_served_request_counted(server, run(OwnCookie, server, http_client, console))
        assert [request.cookies() for request in server.on("/check")] == [
            {"mine": "1"}
        ] * USERS * ITERATIONS
        assert [request.cookies() for request in server.on("/after")] == [
            {"sid": "abc"}
        ] * USERS * ITERATIONS


# --- D5: a Location that is not a URL to follow -------------------------------------------------
NOT_A_URL = "invalid redirect: Location is not a valid URL"
NOT_HTTP = "invalid redirect: Location is not an http or https URL"

BAD_LOCATIONS = {
    "an-unclosed-ipv6-host": ("http://[::1/x", NOT_A_URL),
    "an-unclosed-ipv6-host-without-a-scheme": ("//[::1/x", NOT_A_URL),
    "a-port-out-of-range": ("http://127.0.0.1:99999/x", NOT_A_URL),
    "a-port-that-is-not-a-number": ("http://127.0.0.1:port/x", NOT_A_URL),
    "another-scheme": ("ftp://127.0.0.1/x", NOT_HTTP),
}


@pytest.mark.parametrize(("location", "error"), BAD_LOCATIONS.values(), ids=BAD_LOCATIONS.keys())
def test_a_redirect_to_a_malformed_location_is_recorded_as_the_3xx_it_was(
    location: str, error: str, http_client: str, console: Console
) -> None:
    script = {"/moved": answer(302, f"Location: {location}", body=b"moved")}
    with RawServer(script) as server:
        result = load(server, ["/moved"], http_client, console)
        metrics = assert_every_served_request_counted(server, result)
        stats = metrics.requests[("GET", "/moved")]
        assert (stats.count, stats.fail_count) == (USERS * ITERATIONS, USERS * ITERATIONS)
        assert stats.status_codes == {302: USERS * ITERATIONS}
        assert metrics.errors == {f"GET /moved: {error}": USERS * ITERATIONS}


def test_the_chain_ends_at_the_hop_whose_location_is_malformed(
    http_client: str, console: Console
) -> None:
    script = {
        "/first": answer(301, "Location: /second", "Set-Cookie: hop=1; Path=/"),
        "/second": answer(307, "Location: http://[::1/x"),
    }
    with RawServer(script) as server:
        result = load(server, ["/first"], http_client, console)
        metrics = assert_every_served_request_counted(server, result, hops=2)
        stats = metrics.requests[("GET", "/first")]
        assert stats.status_codes == {307: USERS * ITERATIONS}
        assert stats.fail_count == USERS * ITERATIONS
        assert metrics.errors == {f"GET /first: {NOT_A_URL}": USERS * ITERATIONS}
        assert [request.cookies() for request in server.on("/second")] == [
            {"hop": "1"}
        ] * USERS * ITERATIONS


class Recorded(TaskSet):
    """Reads the record of one malformed redirect: its URL and whether it was redirected."""

    seen: ClassVar[list[tuple[int, str, bool, str]]] = []

    @task
    async def moved(self) -> None:
        response = await self.get("/first")
        self.seen.append((response.status, response.url, response.redirected, response.error))


def test_the_record_names_the_hop_that_answered_and_no_url(
    http_client: str, console: Console
) -> None:
    script = {
        "/first": answer(302, "Location: /second"),
        "/second": answer(302, "Location: http://[::1/x"),
    }
    Recorded.seen = []
    with RawServer(script) as server:
        run(Recorded, server, http_client, console, users=1, iterations=1)
        server.settle()
        assert server.served == 2
    assert Recorded.seen == [(302, f"{server.url}/second", True, NOT_A_URL)]
