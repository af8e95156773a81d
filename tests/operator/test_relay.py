"""The operator's relay of a Running LoadTest's spec change to its manager's control API, without
a cluster: which calls a spec difference makes, the token the operator can compute again, and
the calls made on a real manager process (and its worker) on 127.0.0.1."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

from gaggle_operator import children, relay
from tests.conftest import Target, finish, free_port, kill_leftovers, spawn_gaggle, write_test
from tests.load.test_plans import PAGES

UID = "3f2a9c1e-0000-4000-8000-000000000001"


def test_a_spec_difference_becomes_the_control_calls_that_make_it_so() -> None:
    steady = {"host": "http://t", "users": 50, "runTime": "10m"}
    assert relay.changed_fields(steady, {**steady, "image": "x"}) == {"image"}  # not live
    assert not relay.changed_fields(steady, dict(steady))
    calls = relay.live_calls(steady, {**steady, "users": 200}, elapsed=30)
    assert [(c.path, c.body, c.text) for c in calls] == [
        ("/api/users", {"users": 200}, "users 50 → 200")
    ]
    calls = relay.live_calls(steady, {**steady, "users": 10, "hatchRate": 5}, elapsed=30)
    assert [(c.path, c.body) for c in calls] == [("/api/users", {"users": 10, "hatch_rate": 5})]
    calls = relay.live_calls(steady, {**steady, "runTime": "15m"}, elapsed=120)
    assert [(c.path, c.body, c.text) for c in calls] == [
        ("/api/run-time", {"remaining": 780.0}, "runTime 10m → 15m")  # the whole run: 15 min
    ]
    planned = {"host": "http://t", "plan": "10,1m;0,30s"}
    calls = relay.live_calls(planned, {**planned, "plan": "20,1m;20,5m"}, elapsed=0)
    assert [(c.path, c.body) for c in calls] == [("/api/plan", {"plan": "20,1m;20,5m"})]
    arrivals = {"host": "http://t", "arrivalRate": 20, "runTime": "10m"}
    calls = relay.live_calls(arrivals, {**arrivals, "arrivalRate": 50.5}, elapsed=30)
    assert [(c.path, c.body, c.text) for c in calls] == [
        ("/api/arrival-rate", {"arrival_rate": 50.5}, "arrivalRate 20 → 50.5")
    ]
    # a plan of rates in its place (the CEL rules want arrivalRate and runTime gone with it)
    rated = {"host": "http://t", "plan": "50/s,1m;0/s,10s"}
    calls = relay.live_calls(arrivals, rated, elapsed=30)
    assert [(c.path, c.body) for c in calls] == [("/api/plan", {"plan": "50/s,1m;0/s,10s"})]


def test_the_token_is_the_operators_to_compute_again_and_each_loadtests_own() -> None:
    assert relay.token_for(UID) == relay.token_for(UID)
    assert relay.token_for(UID) != relay.token_for(UID.replace("1", "2"))
    assert relay.token_for(UID, b"one key") != relay.token_for(UID, b"another key")
    secret = children.token_secret("demo", UID, relay.token_for(UID))
    assert secret["stringData"][children.TOKEN_KEY] == relay.token_for(UID)


def status(port: int, token: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/status", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        answer: dict[str, Any] = json.load(response)
        return answer


def until(port: int, token: str, what: str, check: Any, timeout: float = 20) -> dict[str, Any]:
    deadline, seen = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        try:
            seen = status(port, token)
        except OSError:  # not listening yet
            seen = {}
        if seen and check(seen):
            return seen
        time.sleep(0.05)
    raise AssertionError(f"not {what} within {timeout} s: {seen}")


def test_the_relay_changes_a_real_manager_through_its_control_api(
    target: Target, tmp_path: Path
) -> None:
    test = write_test(tmp_path, PAGES)
    token, grpc_port, metrics_port = relay.token_for(UID), free_port(), free_port()
    env = {"GAGGLE_TOKEN": token}  # as the manager pod gets it from the token Secret
    manager = spawn_gaggle(
        "run", test, "--manager", "--expect-workers", "1", "--manager-bind-host", "127.0.0.1",
        "--manager-bind-port", str(grpc_port), "--metrics-bind", f"127.0.0.1:{metrics_port}",
        "-H", target.url, "-u", "2", "-r", "100", "-t", "60", "--only-summary", env=env,
    )  # fmt: skip
    worker = spawn_gaggle("run", test, "--worker", "--manager-port", str(grpc_port), env=env)
    base = f"http://127.0.0.1:{metrics_port}"
    spec = {"host": target.url, "users": 2, "hatchRate": 100, "runTime": 60}
    try:
        until(metrics_port, token, "hatched", lambda s: s["state"] == "running")
        wrong = relay.relay(base, "not-the-token", spec, {**spec, "users": 9})
        assert [o.message for o in wrong] == [
            "users 2 → 9: the manager answered 401: missing or wrong token: send "
            "'Authorization: Bearer <token>'"
        ]
        (grown,) = relay.relay(base, token, spec, {**spec, "users": 5})
        assert grown.error == ""
        assert grown.record("now") == {
            "at": "now", "field": "users", "change": "users 2 → 5", "result": "applied"
        }  # fmt: skip
        until(metrics_port, token, "5 users", lambda s: s["users"] == {"target": 5, "running": 5})
        (refused,) = relay.relay(base, token, spec, {**spec, "plan": "3,1s;x"})
        assert refused.error.startswith("the manager answered 400: plan: ")
        (ended,) = relay.relay(base, token, spec, {**spec, "runTime": 0})  # over: end now
        assert ended.error == ""
        code, err = finish(manager, timeout=20)
        assert code == 0, err
        assert "control: users 2 → 5 at 100/s" in err  # the manager logs each change
        assert finish(worker, timeout=20)[0] == 0
    finally:
        kill_leftovers(manager, worker)


def test_the_relay_changes_a_running_open_model_on_a_real_manager(
    target: Target, tmp_path: Path
) -> None:
    test = write_test(tmp_path, PAGES)
    token, grpc_port, metrics_port = relay.token_for(UID), free_port(), free_port()
    env = {"GAGGLE_TOKEN": token}
    manager = spawn_gaggle(
        "run", test, "--manager", "--expect-workers", "1", "--manager-bind-host", "127.0.0.1",
        "--manager-bind-port", str(grpc_port), "--metrics-bind", f"127.0.0.1:{metrics_port}",
        "-H", target.url, "--arrival-rate", "20", "-t", "60", "--only-summary", env=env,
    )  # fmt: skip
    worker = spawn_gaggle("run", test, "--worker", "--manager-port", str(grpc_port), env=env)
    base = f"http://127.0.0.1:{metrics_port}"
    spec = {"host": target.url, "arrivalRate": 20, "runTime": 60}
    try:
        until(metrics_port, token, "arriving", lambda s: s["arrival_rate"] == 20)
        (faster,) = relay.relay(base, token, spec, {**spec, "arrivalRate": 50})
        assert faster.message == "arrivalRate 20 → 50"
        until(metrics_port, token, "at 50/s", lambda s: s["arrival_rate"] == 50, timeout=5)
        (users,) = relay.relay(base, token, spec, {**spec, "users": 5})
        assert "an open model's users are its pool" in users.error  # the manager's 409, relayed
        (ended,) = relay.relay(base, token, spec, {**spec, "runTime": 0})
        assert ended.error == ""
        code, err = finish(manager, timeout=20)
        assert code == 0, err
        assert "control: arrival rate 20/s → 50/s" in err
        assert finish(worker, timeout=20)[0] == 0
    finally:
        kill_leftovers(manager, worker)
