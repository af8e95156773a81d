"""Changing a running test through the control API (/api on the metrics port): users up and
down, a new plan, the remaining run time, a stop — standalone and over two worker processes —
against the counting target, whose counts must equal Gaggle's totals; and who may call it."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from rich.console import Console

from gaggle import Attack, RunResult
from gaggle.cli import build_parser, read_run_command
from gaggle.cli.loader import load_tasksets
from gaggle.distributed.manager import Manager
from gaggle.distributed.rules import rules_hash, rules_json
from gaggle.kits.stop import StopSignal
from gaggle.metrics.aggregate import Metrics
from gaggle.metrics.source import Source
from gaggle.options.config import build_config
from gaggle.options.role import Role, RoleKind
from gaggle.run.steering import Steering
from gaggle.web.app import serve
from gaggle.web.control_api import ControlError, ControlReply
from tests.conftest import Target, finish, free_port, kill_leftovers, spawn_gaggle, write_test
from tests.load.test_plans import PAGES, Pages, counted

TOKEN = "s3cret-token"


class Api:
    """A caller of one run's control API (and its /metrics) on 127.0.0.1."""

    def __init__(self, port: int, token: str = "") -> None:
        self.base, self.token = f"http://127.0.0.1:{port}", token

    async def call(
        self, method: str, path: str, body: object = None, token: str | None = None
    ) -> tuple[int, Any]:
        token = self.token if token is None else token
        headers = {"Content-Type": "application/json"}  # the API takes JSON alone (D9)
        headers |= {"Authorization": f"Bearer {token}"} if token else {}
        data = body if isinstance(body, str | bytes) else None if body is None else json.dumps(body)
        timeout = aiohttp.ClientTimeout(total=5)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(method, self.base + path, data=data, headers=headers) as response,
        ):
            text = await response.text()
            return response.status, json.loads(text) if text.startswith("{") else text

    async def post(self, path: str, body: object) -> ControlReply:
        status, answer = await self.call("POST", path, body)
        assert status == 200, answer
        result: ControlReply = answer
        return result

    async def status(self) -> ControlReply:
        status, answer = await self.call("GET", "/api/status")
        assert status == 200, answer
        result: ControlReply = answer
        return result

    async def until(
        self, what: str, check: Callable[[ControlReply], bool], timeout: float = 10
    ) -> ControlReply:
        """Ask the status until ``check`` holds (bounded in time)."""
        deadline = time.monotonic() + timeout
        answer: ControlReply = {}
        while time.monotonic() < deadline:
            try:
                answer = await self.status()
            except (aiohttp.ClientError, OSError):  # not listening yet
                answer = {}
            if answer and check(answer):
                return answer
            await asyncio.sleep(0.05)
        raise AssertionError(f"not {what} within {timeout} s: {answer}")


def running(users: int) -> Callable[[ControlReply], bool]:
    return lambda s: s["users"]["running"] == users and s["users"]["target"] == users


def standalone(
    target: Target, steps: Callable[[Api], Awaitable[None]], token: str = "", **options: Any
) -> RunResult:
    """A run on this loop with its metrics port on 127.0.0.1, ``steps`` calling its API."""
    port = free_port()
    if token:
        options["control_token"] = token
    attack = Attack(Pages)

    async def both() -> RunResult:
        run = asyncio.ensure_future(
            attack.run_async(
                console=Console(file=io.StringIO(), width=140),
                host=target.url,
                metrics_bind=f"127.0.0.1:{port}",
                **options,
            )
        )
        try:
            await asyncio.wait_for(steps(Api(port, token)), timeout=30)
        except BaseException:  # a failed step: end the run instead of leaving it going
            with contextlib.suppress(aiohttp.ClientError, OSError):
                await Api(port, token).call("POST", "/api/stop", {})
            await asyncio.wait_for(run, timeout=30)
            raise
        return await asyncio.wait_for(run, timeout=30)

    return asyncio.run(both())


def test_users_up_and_down_mid_run_the_totals_stay_exact(target: Target, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    seen: dict[str, Any] = {}

    async def steps(api: Api) -> None:
        await api.until("2 users running", running(2))
        await api.post("/api/users", {"users": 6, "hatch_rate": 200})
        await api.until("6 users running", running(6))
        answer = await api.post("/api/users", {"users": 1})
        assert answer["hatch_rate"] == 200  # the last rate given stays
        await api.until("1 user running", running(1))
        seen["status"] = await api.status()
        _, seen["metrics"] = await api.call("GET", "/metrics")
        await api.post("/api/stop", {"reason": "enough"})

    result = standalone(target, steps, users=2, hatch_rate=100, report_file=str(report))
    assert result.stopped_by == "enough"
    served = target.counts()
    assert counted(result) == served  # what Gaggle counted is what the target served
    # 2 users hatched, 4 added (slots 2..5), 5 stopped mid-run, the last 1 at the stop: every
    # user ran its on_start and on_stop tasks once
    assert served["GET /start 404"] == served["GET /landing 200"] == 6
    changes = [c["change"] for c in seen["status"]["changes"]]
    assert changes == ["users 2 → 6 at 200/s", "users 6 → 1 at 200/s"]
    assert seen["status"]["load"] == "users"
    assert 'gaggle_control_changes_total{what="users"} 2.0' in seen["metrics"]
    assert 'gaggle_control_changes_total{what="stop"} 0.0' in seen["metrics"]
    marks = json.loads(report.read_text())["timeline"]["changes"]
    assert [(m["what"], m["label"]) for m in marks] == [
        ("users", "users 2 → 6 at 200/s"),
        ("users", "users 6 → 1 at 200/s"),
        ("stop", "stop: enough"),
    ]


def test_a_new_plan_replaces_the_load_and_ends_the_run(target: Target) -> None:
    seen: dict[str, Any] = {}

    async def steps(api: Api) -> None:
        await api.until("2 users running", running(2))
        answer = await api.post("/api/plan", {"plan": "4,0.2s;4,0.4s;1,0.2s"})
        assert answer["load"] == "plan"
        assert answer["plan"] == "4,0.2;4,0.4;1,0.2"
        seen["stage"] = (await api.until("in stage 2", lambda s: "stage 2" in str(s["stage"])))[
            "stage"
        ]

    result = standalone(target, steps, users=2, hatch_rate=100, run_time=60)
    assert result.stopped_by == "the test plan is over"  # not the run time: the plan ends it
    assert seen["stage"] == "stage 2 (4,0.4): 4 users in 0.4 s"
    served = target.counts()
    assert counted(result) == served
    assert served["GET /start 404"] == served["GET /landing 200"] == 4  # 2, then 2 more


def test_the_remaining_run_time_ends_a_plan_early(target: Target) -> None:
    seen: dict[str, Any] = {}

    async def steps(api: Api) -> None:
        before = await api.until("2 users running", running(2))
        assert before["load"] == "plan"
        assert before["run_time"]["remaining"] > 50
        answer = await api.post("/api/run-time", {"remaining": "0.5s"})
        assert 0 < answer["run_time"]["remaining"] <= 0.5
        seen["change"] = answer["changes"][-1]["change"]

    result = standalone(target, steps, test_plan="2,0.1s;2,60s")
    assert result.stopped_by == "run time elapsed"
    assert seen["change"].startswith("run time: 0.5 s remaining (was ")
    assert counted(result) == target.counts()


def test_a_run_time_given_to_a_run_without_one_ends_it(target: Target) -> None:
    async def steps(api: Api) -> None:
        before = await api.until("1 user running", running(1))
        assert before["run_time"]["remaining"] is None  # no -t: until stopped
        await api.post("/api/run-time", {"remaining": 0.3})

    result = standalone(target, steps, users=1, hatch_rate=10)
    assert result.stopped_by == "run time elapsed"
    assert counted(result) == target.counts()


def test_a_token_is_required_and_bad_values_are_400s_that_leave_the_run_alone(
    target: Target,
) -> None:
    async def steps(api: Api) -> None:
        await api.until("2 users running", running(2))
        for token in ("", "wrong"):  # missing, wrong: 401, for reads and changes alike
            status, answer = await api.call("GET", "/api/status", token=token)
            assert status == 401, answer
            status, _ = await api.call("POST", "/api/users", {"users": 50}, token=token)
            assert status == 401
        for path, body, field, value in [
            ("/api/users", {"users": -1}, "users", -1),
            ("/api/users", {"users": "ten"}, "users", "ten"),
            ("/api/users", {}, "users", None),
            ("/api/users", {"users": 3, "hatch_rate": 0}, "hatch_rate", 0),
            ("/api/plan", {"plan": "10,1m;x,1m"}, "plan", "10,1m;x,1m"),
            ("/api/run-time", {"remaining": "soon"}, "remaining", "soon"),
            ("/api/users", "not json", "body", "not json"),
        ]:
            status, answer = await api.call("POST", path, body)
            assert status == 400, (path, body, answer)
            assert (answer["field"], answer["value"]) == (field, value)
            assert answer["error"].startswith(f"{field}: ")
            assert answer["allowed"]
        status, answer = await api.call("POST", "/api/plan", {"plan": "10,1m;x,1m"})
        assert "stage 2 'x,1m'" in answer["error"]  # the plan's own message: which stage
        status, answer = await api.call("POST", "/api/arrival-rate", {"arrival_rate": 50})
        assert status == 409
        assert "no open model in this run" in answer["allowed"]
        after = await api.status()  # nothing of that changed the run
        assert after["users"] == {"target": 2, "running": 2}
        assert after["changes"] == []
        assert after["state"] == "running"
        await api.post("/api/stop", {})

    result = standalone(target, steps, token=TOKEN, users=2, hatch_rate=100)
    assert result.stopped_by == "stopped through the control API"
    assert counted(result) == target.counts()


def test_users_cannot_change_under_iterations_but_a_stop_can(target: Target) -> None:
    async def steps(api: Api) -> None:
        await api.until("1 user running", running(1))
        status, answer = await api.call("POST", "/api/users", {"users": 5})
        assert status == 409
        assert "--iterations" in answer["allowed"]
        answer = await api.post("/api/stop", {"reason": "done here"})
        assert answer["stopping"] == "done here"

    result = standalone(target, steps, users=1, hatch_rate=10, iterations=10_000, run_time=30)
    assert result.stopped_by == "done here"


def test_beyond_loopback_without_a_token_the_api_is_off() -> None:
    source = Source(metrics=Metrics, users=int)

    class Never:  # the API must not get as far as the controls
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"called {name}")

    async def call() -> tuple[int, Any]:
        port = free_port()
        endpoint, _ = await serve(f"0.0.0.0:{port}", source, Never(), "")
        try:
            return await Api(port).call("POST", "/api/users", {"users": 1})
        finally:
            await endpoint.cleanup()

    status, answer = asyncio.run(call())
    assert status == 403
    assert "--control-token" in answer["error"]


def test_a_manager_takes_its_gaggle_token_as_the_control_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    test = write_test(tmp_path, PAGES)
    monkeypatch.setenv("GAGGLE_TOKEN", TOKEN)
    monkeypatch.delenv("GAGGLE_CONTROL_TOKEN", raising=False)
    parse = build_parser().parse_args
    host = ["-H", "http://127.0.0.1:1"]
    manager = read_run_command(parse(["run", test, *host, "--manager", "--expect-workers", "1"]))
    assert manager.plan().config.control_token == TOKEN
    monkeypatch.setenv("GAGGLE_CONTROL_TOKEN", "other")  # a standalone run's own
    assert read_run_command(parse(["run", test, *host])).plan().config.control_token == "other"


class InProcessGaggle:
    """A manager on the test's loop (its Manager object at hand) for two worker processes on
    127.0.0.1, its control API on a port of its own with ``TOKEN``."""

    def __init__(self, test: str, target: Target, **options: Any) -> None:
        self.test, tasksets = test, load_tasksets(test)
        self.grpc_port, metrics_port = free_port(), free_port()
        plan = Attack(*tasksets).plan(
            {"host": target.url, "control_token": TOKEN,
             "metrics_bind": f"127.0.0.1:{metrics_port}", **options},
            console=Console(file=io.StringIO(), width=140),
        )  # fmt: skip
        role = Role(RoleKind.MANAGER, expect_workers=2, bind_host="127.0.0.1",
                    bind_port=self.grpc_port)  # fmt: skip
        self.manager = Manager(plan, role, rules_hash(tasksets), rules_json(tasksets))
        self.api = Api(metrics_port, TOKEN)

    def run(
        self, steps: Callable[[], Awaitable[list[ControlReply]]], *worker_args: list[str]
    ) -> tuple[RunResult, list[tuple[int, str]], list[ControlReply]]:
        """The gaggle, ``steps`` calling its API, until the run ends (by itself or a stop)."""

        async def gaggle() -> tuple[RunResult, list[tuple[int, str]], list[ControlReply]]:
            running = asyncio.ensure_future(self.manager.run())
            await asyncio.sleep(0.2)
            processes = [
                spawn_gaggle("run", self.test, "--worker", "--manager-port", str(self.grpc_port),
                             *args)
                for args in worker_args or ([], [])
            ]  # fmt: skip
            try:
                answers = await steps()
                result = await asyncio.wait_for(running, timeout=20)
                return result, [await asyncio.to_thread(finish, p) for p in processes], answers
            finally:
                running.cancel()
                kill_leftovers(*processes)

        return asyncio.run(gaggle())


def test_two_workers_get_added_users_on_the_fewest_and_lose_them_from_the_most(
    target: Target, tmp_path: Path
) -> None:
    gaggle = InProcessGaggle(
        write_test(tmp_path, PAGES), target, users=3, hatch_rate=100, run_time=60
    )
    api, worker_ports = gaggle.api, [free_port(), free_port()]
    workers = [Api(port) for port in worker_ports]

    async def users_per_worker() -> list[int]:
        """What each worker itself says it runs (its own /summary)."""
        return sorted([(await w.call("GET", "/summary"))[1]["users"] for w in workers])

    async def until_workers_run(expected: list[int]) -> None:
        deadline = time.monotonic() + 10
        while (seen := await users_per_worker()) != expected:
            assert time.monotonic() < deadline, f"workers run {seen}, not {expected}"
            await asyncio.sleep(0.05)

    async def steps() -> list[ControlReply]:
        answers: list[ControlReply] = []
        hatched = "3 users hatched"
        await api.until(hatched, lambda s: running(3)(s) and s["state"] == "running", 20)
        await until_workers_run([1, 2])  # 3 over 2 workers: 2 and 1
        await api.post("/api/users", {"users": 4, "hatch_rate": 100})
        await until_workers_run([2, 2])  # the one with 1 got it
        answers.append(await api.status())
        await api.post("/api/users", {"users": 7})
        await until_workers_run([3, 4])
        await api.post("/api/users", {"users": 6})
        await until_workers_run([3, 3])  # taken from the one with 4
        answers.append(await api.status())
        answers.append(await api.until("6 users running", running(6)))
        await api.post("/api/stop", {})
        return answers

    binds = [["--metrics-bind", f"127.0.0.1:{port}"] for port in worker_ports]
    result, exits, answers = gaggle.run(steps, *binds)
    assert [code for code, _ in exits] == [0, 0], exits
    assert sorted(answers[0]["workers"].values()) == [2, 2]  # the manager's view
    assert sorted(answers[1]["workers"].values()) == [3, 3]
    assert [c["change"] for c in answers[2]["changes"]] == [
        "users 3 → 4 at 100/s",
        "users 4 → 7 at 100/s",
        "users 7 → 6 at 100/s",
    ]
    served = target.counts()
    assert counted(result) == served  # the merged totals are exactly what the target served
    assert served["GET /start 404"] == served["GET /landing 200"] == 7


def test_no_change_but_a_stop_is_taken_once_the_run_stops() -> None:
    """Checked on the steering itself: end to end, a stopped run's port closes within moments."""

    class Stopped:
        def __init__(self) -> None:
            self.stopping = StopSignal()
            self.open_model = None  # a closed model

        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"a refused change called {name}")

    async def refusals() -> list[tuple[int, str]]:
        run = Stopped()
        run.stopping.set("enough")
        steering = Steering(run, build_config({"users": 2}), None)
        changes: list[Callable[[], ControlReply]] = [
            lambda: steering.set_users(5, None),
            lambda: steering.set_plan("1,1s"),
            lambda: steering.set_run_time(10),
        ]
        seen = []
        for change in changes:
            with pytest.raises(ControlError) as refused:
                change()
            seen.append((refused.value.status, refused.value.allowed))
        return seen

    assert asyncio.run(refusals()) == [(409, "the run is stopping (enough)")] * 3


def strict_json(text: str) -> Any:
    """JSON as RFC 8259 has it: NaN and infinities are not JSON."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"non-standard JSON: {constant} in {text[:300]}")

    return json.loads(text, parse_constant=refuse)


async def refused_each(api: Api, calls: list[tuple[str, object, str]]) -> None:
    """Each call is a 400 naming ``field``, in standard JSON."""
    for path, body, field in calls:
        status, answer = await api.call("POST", path, body)
        assert status == 400, (path, body, answer)
        assert isinstance(answer, dict), (path, body, answer)
        assert answer["field"] == field, (path, body, answer)
        assert answer["error"].startswith(f"{field}: "), answer
        assert answer["allowed"], answer
        strict_json(json.dumps(answer, allow_nan=False))  # what was refused shows as text


def test_d2_d15_nan_huge_values_and_bad_bodies_are_400s_and_the_run_goes_on(
    target: Target,
) -> None:
    """Before: a NaN run time, a body that is not UTF-8 and one nested too deep answered 500;
    10^12 users at 10^12/s and a plan of 10^20 users were taken and froze the loop for good."""

    async def steps(api: Api) -> None:
        await api.until("2 users running", running(2))
        await refused_each(
            api,
            [
                ("/api/run-time", '{"remaining": NaN}', "remaining"),
                ("/api/users", b'{"users": 3, "reason": "\xff\xfe"}', "body"),
                ("/api/stop", b"\xc3\x28", "body"),
                ("/api/users", "[" * 100_000, "body"),
                ("/api/run-time", '{"remaining": Infinity}', "remaining"),
                ("/api/run-time", {"remaining": 1e308}, "remaining"),
                ("/api/run-time", {"remaining": "99999999999h"}, "remaining"),
                ("/api/users", '{"users": 3, "hatch_rate": NaN}', "hatch_rate"),
                ("/api/users", '{"users": 3, "hatch_rate": Infinity}', "hatch_rate"),
                ("/api/users", {"users": 3, "hatch_rate": 1e308}, "hatch_rate"),
                ("/api/users", {"users": 10**12, "hatch_rate": 10**12}, "users"),
                ("/api/users", {"users": 30_000}, "users"),  # more than one process holds
                ("/api/plan", {"plan": "99999999999999999999,1s"}, "plan"),
                ("/api/plan", {"plan": "2,1s;30000,1m"}, "plan"),
                ("/api/plan", {"plan": "3,1e12"}, "plan"),
            ],
        )
        status, answer = await api.call("POST", "/api/users", {"users": 30_000})
        assert "use at most 25,000 users in one process" in answer["allowed"]
        status, answer = await api.call("POST", "/api/users", b"\xff")
        assert answer["allowed"] == "send a JSON object in UTF-8"
        status, _ = await api.call("GET", "/metrics")
        assert status == 200
        status, raw = await api.call("GET", "/api/status")
        after = strict_json(json.dumps(raw, allow_nan=False))
        assert after["users"] == {"target": 2, "running": 2}  # the run goes on as it was
        assert after["changes"] == []
        assert after["state"] == "running"
        assert after["run_time"]["remaining"] is None
        await api.post("/api/stop", {})

    result = standalone(target, steps, users=2, hatch_rate=100)
    assert result.stopped_by == "stopped through the control API"
    assert counted(result) == target.counts()


def test_d2_d15_an_open_models_arrival_rate_is_finite_and_bounded(target: Target) -> None:
    """Before: NaN was taken (arrivals stopped; /api/status and /metrics said NaN), and
    Infinity, 1e308 and 1e9 froze the loop catching up arrivals that never end."""

    async def steps(api: Api) -> None:
        await api.until("arrivals at 5/s", lambda s: s["arrival_rate"] == 5)
        await refused_each(
            api,
            [
                ("/api/arrival-rate", '{"arrival_rate": NaN}', "arrival_rate"),
                ("/api/arrival-rate", '{"arrival_rate": Infinity}', "arrival_rate"),
                ("/api/arrival-rate", {"arrival_rate": 1e308}, "arrival_rate"),
                ("/api/arrival-rate", {"arrival_rate": 1e9}, "arrival_rate"),
                ("/api/arrival-rate", {"arrival_rate": 200_000}, "arrival_rate"),
                ("/api/arrival-rate", {"arrival_rate": -1}, "arrival_rate"),
                ("/api/plan", {"plan": "200000/s,1s"}, "plan"),
                ("/api/plan", {"plan": "1000000000/s,1s"}, "plan"),
            ],
        )
        status, answer = await api.call("POST", "/api/arrival-rate", {"arrival_rate": 200_000})
        assert "use at most 100,000 arrivals a second in one process" in answer["allowed"]
        status, metrics = await api.call("GET", "/metrics")
        assert status == 200
        assert "gaggle_arrival_rate 5.0" in metrics
        after = await api.status()
        assert after["arrival_rate"] == 5
        assert after["changes"] == []
        answer = await api.post("/api/arrival-rate", {"arrival_rate": 100_000})  # the bound
        assert answer["arrival_rate"] == 100_000
        answer = await api.post("/api/run-time", {"remaining": 0})
        assert answer["state"] in ("running", "stopping")

    result = standalone(target, steps, arrival_rate=5, run_time=60, max_users=5)
    assert result.stopped_by == "run time elapsed"
    assert counted(result) == target.counts()


def test_d2_a_manager_takes_one_process_bound_for_each_worker_it_runs() -> None:
    """The rule the command line applies to --expect-workers, applied by the steering to the
    workers running: at most 25,000 users and 100,000 arrivals a second each."""

    class Running:
        def __init__(self, workers: int, open_model: Any = None) -> None:
            self.stopping = StopSignal()
            self.open_model = open_model
            self.workers = workers

        def worker_users(self) -> dict[int, int]:
            return {number: 1 for number in range(1, self.workers + 1)}

        def steering_refused(self) -> str:
            return ""

        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"a refused change called {name}")

    def refusal(run: Running, change: Callable[[Steering], ControlReply]) -> ControlError:
        with pytest.raises(ControlError) as refused:
            change(Steering(run, build_config({"users": 2}), None))
        return refused.value

    over = refusal(Running(2), lambda steering: steering.set_users(50_001, None))
    assert (over.status, over.field, over.value) == (400, "users", 50_001)
    assert "at most 50,000 users over these 2 processes, 25,000 in each" in over.allowed
    over = refusal(Running(4), lambda steering: steering.set_plan("10,1s;100001,1m"))
    assert (over.status, over.field) == (400, "plan")
    assert "at most 100,000 users over these 4 processes" in over.allowed
    alone = refusal(Running(0), lambda steering: steering.set_users(25_001, None))
    assert "in one process" in alone.allowed

    class OpenModel:
        def rate_now(self) -> float:
            return 5.0

    over = refusal(Running(3, OpenModel()), lambda steering: steering.set_arrival_rate(300_001.0))
    assert (over.status, over.field) == (400, "arrival_rate")
    assert "at most 300,000 arrivals a second over these 3 processes" in over.allowed
