"""The engine against a real counting server: what the target served is what Gaggle counted."""

from __future__ import annotations

import asyncio
import collections
import gc
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from gaggle import Attack, RunResult, TaskSet, constant, task
from gaggle.run.runner import Runner
from tests.conftest import Target


def run(*tasksets: type[TaskSet], console: Console, **options: Any) -> RunResult:
    options.setdefault("hatch_rate", 1000)
    return asyncio.run(Attack(*tasksets).run_async(console=console, **options))


def served(target: Target) -> dict[tuple[str, str, int], int]:
    out = {}
    for key, count in target.counts().items():
        method, path, status = key.split(" ")
        out[(method, path, int(status))] = count
    return out


def counted(result: RunResult) -> dict[tuple[str, str, int], int]:
    out = {}
    for (method, name), stats in result.all_metrics().requests.items():
        for status, count in stats.status_codes.items():
            out[(method, name, status)] = count
    return out


def read_log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


class Browsing(TaskSet):
    @task(on_start=True)
    async def login(self) -> None:
        await self.post("/login", data={"username": "u", "password": ""})

    @task(weight=2)
    async def index(self) -> None:
        await self.get("/")

    @task
    async def about(self) -> None:
        await self.get("/about/")

    @task
    async def missing(self) -> None:
        await self.get("/status/404")

    @task(on_stop=True)
    async def logout(self) -> None:
        await self.get("/landing")


def test_totals_equal_the_servers_counters_and_the_requests_log(
    target: Target, console: Console, tmp_path: Path, http_client: str
) -> None:
    log = tmp_path / "requests.json"
    result = run(
        Browsing,
        console=console,
        http_client=http_client,
        host=target.url,
        users=8,
        run_time=2,
        requests_file=str(log),
        no_reset_metrics=True,
    )
    server, mine = served(target), counted(result)
    # The server answers each login with a 302 and then serves the redirect hop to "/"; Gaggle
    # records the request that was made, once, with its final status (as the seed does).
    logins = server.pop(("POST", "/login", 302))
    assert mine.pop(("POST", "/login", 200)) == logins == 8
    server[("GET", "/", 200)] -= logins
    assert mine == server
    entries = read_log(log)
    assert len(entries) == result.metrics.aggregated_requests().count
    assert sum(1 for e in entries if e["name"] == "/landing") == 8  # on_stop ran once per user
    assert sum(1 for e in entries if e["name"] == "/login") == 8  # on_start ran once per user
    assert result.metrics.requests[("GET", "/status/404")].fail_count > 0
    assert result.metrics.requests[("GET", "/")].fail_count == 0
    assert result.stopped_by == "run time elapsed"


def test_reset_sets_the_hatching_phase_aside_and_loses_nothing(
    target: Target, console: Console, http_client: str
) -> None:
    result = run(
        Browsing,
        console=console,
        http_client=http_client,
        host=target.url,
        users=6,
        hatch_rate=6,
        run_time=1,
    )
    assert result.hatch_metrics is not None
    assert not result.hatch_metrics.is_empty()
    assert "All 6 users hatched, resetting metrics" in console.file.getvalue()  # type: ignore[attr-defined]
    total_served = sum(target.counts().values())
    total_counted = result.all_metrics().aggregated_requests().count
    logins = served(target)[("POST", "/login", 302)]
    assert total_counted == total_served - logins  # each login's redirect hop is one more


class Weighted(TaskSet):
    wait_time = constant(0)

    @task(weight=3)
    async def a(self) -> None:
        await self.get("/a")

    @task(weight=1)
    async def b(self) -> None:
        await self.get("/b")


def test_task_weights_give_their_shares(target: Target, console: Console) -> None:
    run(Weighted, console=console, host=target.url, users=4, run_time=1.5)
    counts = served(target)
    a, b = counts[("GET", "/a", 200)], counts[("GET", "/b", 200)]
    # Each cycle runs a three times and b once; a stop mid-cycle shifts at most 4 per user.
    assert a + b > 200
    assert abs(a - 3 * b) <= 4 * 4


class Sequenced(TaskSet):
    @task(sequence=2)
    async def second(self) -> None:
        await self.get("/b")

    @task(sequence=1)
    async def first(self) -> None:
        await self.get("/a")

    @task(sequence=3, weight=2)
    async def third(self) -> None:
        await self.get("/c")


def test_sequences_run_in_order(target: Target, console: Console, tmp_path: Path) -> None:
    log = tmp_path / "requests.json"
    run(Sequenced, console=console, host=target.url, users=3, run_time=1, requests_file=str(log))
    per_user: dict[int, list[str]] = collections.defaultdict(list)
    for entry in read_log(log):
        per_user[entry["user"]].append(entry["name"])
    assert len(per_user) == 3
    for names in per_user.values():
        whole = len(names) // 4 * 4
        assert whole >= 8
        assert names[:whole] == ["/a", "/b", "/c", "/c"] * (whole // 4)


class CookieUser(TaskSet):
    wait_time = constant(0.05)

    def __init__(self) -> None:
        self.sessions: set[str] = set()

    @task(on_start=True)
    async def login(self) -> None:
        await self.post("/login", data={})

    @task
    async def whoami(self) -> None:
        response = await self.get("/whoami")
        self.sessions.add(response.json()["session"])
        if len(self.sessions) != 1:
            raise AssertionError(f"user {self.user_index} saw sessions {self.sessions}")


def test_each_user_has_its_own_cookie_jar(
    target: Target, console: Console, http_client: str
) -> None:
    result = run(
        CookieUser, console=console, http_client=http_client, host=target.url, users=5, run_time=1
    )
    tasks = result.all_metrics().tasks
    assert tasks[(0, 1)].count > 10
    assert tasks[(0, 1)].fail_count == 0, result.all_metrics().errors


class Redirected(TaskSet):
    @task
    async def follow(self) -> None:
        response = await self.get("/redirect")
        assert response.redirected
        assert response.url.endswith("/about/")


def test_redirects_are_followed_and_recorded(
    target: Target, console: Console, tmp_path: Path, http_client: str
) -> None:
    log = tmp_path / "requests.json"
    result = run(
        Redirected,
        console=console,
        http_client=http_client,
        host=target.url,
        users=1,
        run_time=0.5,
        requests_file=str(log),
    )
    entries = read_log(log)
    assert entries
    assert all(e["redirected"] and e["final_url"].endswith("/about/") for e in entries)
    assert all(e["url"].endswith("/redirect") for e in entries)
    assert result.all_metrics().tasks[(0, 0)].fail_count == 0


def make_sticky(other_origin: str) -> type[TaskSet]:
    class Sticky(TaskSet):
        wait_time = constant(0.05)

        @task(sequence=1)
        async def jump(self) -> None:
            await self.get(f"/redirect?to={other_origin}/landing")

        @task(sequence=2)
        async def where(self) -> None:
            await self.get("/about/")

    return Sticky


def test_sticky_follow_moves_later_requests_to_the_redirect_origin(
    target: Target, console: Console, tmp_path: Path, http_client: str
) -> None:
    for sticky in (False, True):
        log = tmp_path / f"requests-{sticky}.json"
        run(
            make_sticky(target.other_origin),
            console=console,
            http_client=http_client,
            host=target.url,
            users=1,
            iterations=1,  # the whole sequence, as long as it takes (not 0.5 s on a busy machine)
            sticky_follow=sticky,
            requests_file=str(log),
        )
        abouts = [e["url"] for e in read_log(log) if e["name"] == "/about/"]
        assert abouts
        expected = target.other_origin if sticky else target.url
        assert all(url.startswith(expected) for url in abouts), (sticky, abouts)


class Verdicts(TaskSet):
    @task
    async def check(self) -> None:
        ok = await self.get("/")
        self.set_failure("page lacks the form", ok)
        expected = await self.get("/status/404")
        self.set_success(expected)


def test_set_failure_and_set_success_flip_counts_and_log_updates(
    target: Target, console: Console, tmp_path: Path, http_client: str
) -> None:
    requests_log, debug_log = tmp_path / "requests.json", tmp_path / "debug.json"
    result = run(
        Verdicts,
        console=console,
        http_client=http_client,
        host=target.url,
        users=2,
        run_time=0.5,
        requests_file=str(requests_log),
        debug_file=str(debug_log),
    )
    metrics = result.all_metrics()
    index, missing = metrics.requests[("GET", "/")], metrics.requests[("GET", "/status/404")]
    assert index.count > 5
    assert (index.success_count, index.fail_count) == (0, index.count)
    assert (missing.success_count, missing.fail_count) == (missing.count, 0)
    entries = read_log(requests_log)
    updates = [e for e in entries if e["update"]]
    assert len(updates) == index.count + missing.count
    assert all(not e["success"] for e in updates if e["name"] == "/")
    debug = read_log(debug_log)
    assert len(debug) == index.count
    assert debug[0]["tag"] == "page lacks the form"
    assert debug[0]["request"]["name"] == "/"
    assert debug[0]["body"] == "page /"
    assert metrics.tasks[(0, 0)].fail_count == metrics.tasks[(0, 0)].count  # the task failed


class Flaky(TaskSet):
    wait_time = constant(0.01)

    @task
    async def boom(self) -> None:
        await self.get("/a")
        raise ValueError("no such element")

    @task
    async def fine(self) -> None:
        await self.get("/b")


def test_a_failing_task_is_counted_and_logged_once_and_the_run_goes_on(
    target: Target, console: Console, caplog: Any
) -> None:
    caplog.set_level("ERROR", logger="gaggle")
    result = run(Flaky, console=console, host=target.url, users=3, run_time=1)
    tasks = result.all_metrics().tasks
    assert tasks[(0, 0)].fail_count == tasks[(0, 0)].count > 10
    assert tasks[(0, 1)].fail_count == 0
    assert tasks[(0, 1)].count > 10
    logged = [r for r in caplog.records if "no such element" in r.getMessage()]
    assert len(logged) == 1
    assert "Traceback" in logged[0].getMessage()
    errors = result.all_metrics().errors
    assert errors["task Flaky.boom: ValueError: no such element"] == tasks[(0, 0)].count


class Plain(TaskSet):
    wait_time = constant(0.02)

    @task
    async def index(self) -> None:
        await self.get("/")


def test_an_unreachable_host_fails_requests_but_not_the_run(
    console: Console, http_client: str
) -> None:
    result = run(
        Plain,
        console=console,
        http_client=http_client,
        host="http://127.0.0.1:9",
        users=2,
        run_time=0.5,
    )
    stats = result.all_metrics().requests[("GET", "/")]
    assert stats.count == stats.fail_count > 2
    assert set(stats.status_codes) == {0}
    assert result.all_metrics().errors == {
        "GET /: connect error: 127.0.0.1:9: connection refused": stats.count
    }


def test_throttle_holds_the_request_rate(target: Target, console: Console) -> None:
    result = run(
        Weighted,
        console=console,
        host=target.url,
        users=10,
        run_time=3,
        throttle_requests=40,
        no_reset_metrics=True,
    )
    rate = sum(target.counts().values()) / result.duration
    assert 36 <= rate <= 44, rate


def test_run_time_stops_the_run(target: Target, console: Console) -> None:
    result = run(Plain, console=console, host=target.url, users=2, run_time=1)
    assert result.stopped_by == "run time elapsed"
    assert 0.9 <= result.duration < 3


def test_run_time_cuts_hatching_short_when_it_counts_from_the_start(
    target: Target, console: Console
) -> None:
    result = run(
        Plain,
        console=console,
        host=target.url,
        users=100,
        hatch_rate=20,
        run_time=1,
        no_reset_metrics=True,
    )
    assert 15 <= result.users <= 25  # hatched for about one second of the planned five
    assert result.duration < 2.5


def test_hatching_many_users_sets_off_no_full_collection(target: Target, console: Console) -> None:
    """2,000 users that make one request and pause: while they hatch and run, no full collection
    walks the heap (each stalls the loop in proportion to the users; with CPython's defaults a
    hatch like this sets off several, 10,000 users up to 0.5 s each). The run sets the
    collector up first (console.settle_heap)."""

    class Idle(TaskSet):
        wait_time = constant(10)

        @task
        async def once(self) -> None:
            await self.get("/")

    plan = Attack(Idle).plan(
        {"host": target.url, "users": 2000, "hatch_rate": 100_000, "run_time": 1}, console=console
    )
    runner = Runner(plan)  # the collector is set up here, before any clock starts
    full: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2:
            full.append(info["generation"])

    gc.callbacks.append(count)
    try:
        result = asyncio.run(runner.run())
    finally:
        gc.callbacks.remove(count)
    assert result.all_metrics().aggregated_requests().count == 2000 == served_count(target)
    assert full == []


def served_count(target: Target) -> int:
    return sum(served(target).values())
