"""A LoadTest's spec is read with the engine's own rules: every bad field is named, with its value
and what is allowed, and a good spec becomes the manager's `gaggle run` flags."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from gaggle.options.argv import parse_run_args, split_gaggle_options
from gaggle.options.config import build_config
from gaggle.options.converters import (
    ARRIVALS_PER_RUN,
    HATCH_RATE_MAX,
    ITERATIONS_MAX,
    JOIN_TIMEOUT_MAX,
    MAX_WORKERS,
    SECONDS_MAX,
    THROTTLE_MAX,
    USERS_PER_RUN,
)
from gaggle_operator.spec import SpecError, parse_spec
from tests.conftest import ROOT

SCRIPT = "from gaggle import TaskSet, task\n\nclass T(TaskSet):\n    @task\n    async def a(self):\n        await self.get('/')\n"  # noqa: E501


def spec(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "script": {"inline": SCRIPT},
        "host": "http://target.default.svc:8080",
        "users": 10,
        "hatchRate": 2.5,
        "runTime": "1m30s",
        "image": "ghcr.io/example/gaggle:1",
    }
    for key, value in changes.items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    return base


def test_a_good_spec_becomes_the_managers_flags() -> None:
    parsed = parse_spec(
        spec(
            throttleRequests=100,
            statusCodes=True,
            resetMetrics=False,
            args=["--scheduler", "serial", "-v"],
            thresholds=[
                {"metric": "p95", "request": "GET /", "op": "<", "value": 300},
                {"metric": "failRatio", "op": "<=", "value": 0.01},
            ],
            workers={"replicas": 3},
        )
    )
    assert parsed.replicas == 3
    assert parsed.script.file() == "/gaggle/script/loadtest.py"
    args = parsed.gaggle_args()
    assert args[:8] == ["--host", "http://target.default.svc:8080", "-u", "10", "-r", "2.5",
                        "-t", "90"]  # fmt: skip
    values, _ = parse_run_args(args)  # the CLI reads them back to the same run
    assert values["thresholds"] == ["p95(GET /) < 300", "failRatio <= 0.01"]
    assert (values["throttle_requests"], values["status_codes"]) == ("100", True)
    assert values["no_reset_metrics"] is True
    assert values["scheduler"] == "serial"


def test_defaults_fill_what_a_short_spec_leaves_out() -> None:
    parsed = parse_spec(spec(hatchRate=None, image=None), default_image="gaggle:dev")
    assert (parsed.hatch_rate, parsed.replicas, parsed.image) == (1.0, 1, "gaggle:dev")
    assert (parsed.cleanup_policy, parsed.ready_timeout, parsed.reset_metrics) == (
        "Never", 300, True)  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"script": None}, "spec.script: (missing) is not allowed; give exactly one of inline"),
        ({"script": {"inline": SCRIPT, "path": "/t.py"}},
         "spec.script: ['inline', 'path'] is not allowed; give exactly one of"),
        ({"script": {"inline": "def broken(:\n"}}, "spec.script.inline: 'line 1' is not allowed"),
        ({"script": {"path": "relative.py"}}, "spec.script.path: 'relative.py' is not allowed"),
        ({"script": {"configMap": {"key": "t.py"}}}, "spec.script.configMap.name: (missing)"),
        ({"host": "ftp://x"}, "spec.host: 'ftp://x' is not allowed; use an http:// or https://"),
        ({"host": None}, "spec.host: (missing) is not allowed"),
        ({"users": 0}, "spec.users: 0 is not allowed; use a whole number ≥ 1"),
        ({"users": "ten"}, "spec.users: 'ten' is not allowed; use a whole number"),
        ({"users": True}, "spec.users: True is not allowed"),
        ({"hatchRate": 0}, "spec.hatchRate: 0 is not allowed; use a number > 0"),
        ({"runTime": "soon"}, "spec.runTime: 'soon' is not allowed; use a duration such as 30s"),
        ({"runTime": None}, "spec.runTime: (missing) is not allowed; give a run time"),
        ({"runTime": "0s"}, "spec.runTime: '0s' is not allowed; use a run time > 0"),
        ({"args": ["--no-such-flag"]}, "spec.args: ['--no-such-flag'] is not allowed;"),
        ({"args": ["--users", "3"]}, "--users is set by the operator"),
        ({"args": ["--worker"]}, "--worker is set by the operator"),
        ({"args": ["--requests-format", "xml"]}, "--requests-format: 'xml' is not allowed"),
        ({"thresholds": [{"metric": "p95", "op": "=", "value": 1}]},
         "spec.thresholds[0].op: '=' is not allowed; use one of <, <=, >, >="),
        ({"thresholds": [{"metric": "median", "op": "<", "value": 1}]},
         "spec.thresholds[0].metric: 'median' is not allowed; unknown metric"),
        ({"thresholds": [{"metric": "p95", "op": "<", "value": "fast"}]},
         "spec.thresholds[0].value: 'fast' is not allowed; use a finite number"),
        ({"workers": {"replicas": 0}}, "spec.workers.replicas: 0 is not allowed"),
        ({"cleanup": {"policy": "Sometimes"}}, "spec.cleanup.policy: 'Sometimes' is not allowed"),
        ({"imagePullPolicy": "Maybe"}, "spec.imagePullPolicy: 'Maybe' is not allowed"),
        ({"image": None}, "spec.image: (missing) is not allowed; give the gaggle image"),
        ({"extraConfigMaps": [{"mountPath": "/x"}]}, "spec.extraConfigMaps[0].name: (missing)"),
    ],
)  # fmt: skip
def test_a_bad_field_is_named_with_its_value_and_what_is_allowed(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(spec(**changes))
    assert message in str(caught.value)


def test_a_plan_instead_of_users_and_run_time_becomes_the_managers_test_plan() -> None:
    parsed = parse_spec(spec(users=None, hatchRate=None, runTime=None, plan="10,1m;10,5m;0,30s"))
    assert parsed.plan == "10,60;10,300;0,30"
    assert (parsed.users, parsed.run_time) == (10, 390.0)  # its peak and its length
    assert parsed.gaggle_args()[:4] == ["--host", parsed.host, "--test-plan", parsed.plan]
    values, _ = parse_run_args(parsed.gaggle_args())
    assert values["test_plan"] == parsed.plan
    assert "users" not in values
    with pytest.raises(SpecError, match=r"^spec\.plan: '10,1m' is not allowed; give plan or "
                                        r"users, runTime, not both"):  # fmt: skip
        parse_spec(spec(hatchRate=None, plan="10,1m"))
    with pytest.raises(SpecError, match=r"^spec\.plan: '10,1m;x' is not allowed; use USERS"):
        parse_spec(spec(users=None, hatchRate=None, runTime=None, plan="10,1m;x"))
    with pytest.raises(SpecError, match="--test-plan is set by the operator"):
        parse_spec(spec(args=["--test-plan", "1,1s"]))


def test_an_arrival_rate_becomes_the_open_model_flags() -> None:
    parsed = parse_spec(spec(users=None, hatchRate=None, arrivalRate=50, maxUsers=200))
    args = parsed.gaggle_args()
    assert args[:6] == ["--host", "http://target.default.svc:8080", "--arrival-rate", "50", "-t",
                        "90"]  # fmt: skip
    assert args[6:8] == ["--max-users", "200"]
    values, _ = parse_run_args(args, raise_errors=True, gaggle_flags=True)
    config = build_config(values)  # what the manager will run: the engine accepts it
    assert (config.arrival_rate, config.max_users, config.run_time) == (50.0, 200, 90.0)
    rated = parse_spec(spec(users=None, hatchRate=None, runTime=None, plan="10/s,1m;0/s,10s",
                            maxUsers=5))  # fmt: skip
    assert rated.gaggle_args()[2:6] == ["--test-plan", "10/s,60;0/s,10", "--max-users", "5"]
    looped = parse_spec(spec(iterations=3))
    assert looped.gaggle_args()[-2:] == ["--iterations", "3"]


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        (
            {"arrivalRate": 10},
            "spec.arrivalRate: 10 is not allowed; give arrivalRate or users, hatchRate, not both",
        ),
        ({"users": None, "hatchRate": None, "arrivalRate": 0}, "spec.arrivalRate: 0"),
        ({"users": None, "hatchRate": None, "arrivalRate": 5, "runTime": None}, "spec.runTime"),
        ({"maxUsers": 5}, "spec.maxUsers: 5 is not allowed; use it with arrivalRate or a plan"),
        (
            {"users": None, "hatchRate": None, "runTime": None, "plan": "5,1m", "iterations": 2},
            "spec.iterations: 2 is not allowed; use it with users and runTime",
        ),
        ({"users": None, "hatchRate": None, "arrivalRate": 5, "maxUsers": 0}, "spec.maxUsers: 0"),
    ],
)
def test_open_model_fields_the_engine_would_refuse_are_named(
    changes: dict[str, Any], words: str
) -> None:
    with pytest.raises(SpecError) as refused:
        parse_spec(spec(**changes))
    assert words in str(refused.value)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"users": 2_000_000}, "spec.users: 2000000 is not allowed; use a whole number ≥ 1 and "
                               "≤ 1,000,000 (a gaggle's manager"),
        ({"users": 30_000}, "spec.users: 30000 is not allowed; use at most 25,000 users in one "
                            "process (starting a user"),
        ({"users": 75_001, "workers": {"replicas": 3}},
         "spec.users: 75001 is not allowed; use at most 75,000 users over these 3 processes"),
        ({"hatchRate": 1e308}, "spec.hatchRate: 1e+308 is not allowed; use a number > 0 "
                               "(users per second; fractions allowed) and ≤ 1,000,000"),
        ({"runTime": "99999999h"}, "spec.runTime: '99999999h' is not allowed; use a duration "
                                   "≤ 31,536,000 s (a year"),
        ({"runTime": 10**12}, "spec.runTime: 1000000000000 is not allowed; use a duration ≤"),
        ({"users": None, "hatchRate": None, "runTime": None, "plan": "99999999999999999999,1s"},
         "spec.plan: '99999999999999999999,1s' is not allowed; use USERS ≤ 1,000,000"),
        ({"users": None, "hatchRate": None, "runTime": None, "plan": "10,1m;30000,1m"},
         "spec.plan: '10,1m;30000,1m' is not allowed; use at most 25,000 users in one process"),
        ({"users": None, "hatchRate": None, "runTime": None, "plan": "200000/s,1m"},
         "spec.plan: '200000/s,1m' is not allowed; use at most 100,000 arrivals a second in one"),
        ({"users": None, "hatchRate": None, "arrivalRate": 1e9},
         "spec.arrivalRate: 1000000000.0 is not allowed; use a number > 0 (iterations started "
         "per second, e.g. 50 or 0.5) and ≤ 100,000,000"),
        ({"users": None, "hatchRate": None, "arrivalRate": 150_000},
         "spec.arrivalRate: 150000 is not allowed; use at most 100,000 arrivals a second in one "
         "process"),
        ({"users": None, "hatchRate": None, "arrivalRate": 5, "maxUsers": 30_000},
         "spec.maxUsers: 30000 is not allowed; use at most 25,000 users in one process"),
        ({"users": None, "hatchRate": None, "arrivalRate": 5, "maxUsers": 10**7},
         "spec.maxUsers: 10000000 is not allowed; use a whole number ≥ 1 and ≤ 1,000,000"),
        ({"iterations": 10**10}, "spec.iterations: 10000000000 is not allowed; use a whole "
                                 "number ≥ 1 and ≤ 1,000,000,000"),
        ({"throttleRequests": 10**7}, "spec.throttleRequests: 10000000 is not allowed; use a "
                                      "whole number ≥ 1 and ≤ 1,000,000"),
        ({"workers": {"replicas": 5000}}, "spec.workers.replicas: 5000 is not allowed; use a "
                                          "whole number ≥ 1 and ≤ 1,000 (the manager folds"),
        ({"startPolicy": {"readyTimeoutSeconds": 100_000}},
         "spec.startPolicy.readyTimeoutSeconds: 100000 is not allowed; use seconds > 0 (at most "
         "a day)"),
        ({"activeDeadlineSeconds": 10**9}, "spec.activeDeadlineSeconds: 1000000000 is not "
                                           "allowed; use a whole number ≥ 1 and ≤ 31,536,000"),
        ({"cleanup": {"ttlSecondsAfterFinished": 10**9}},
         "spec.cleanup.ttlSecondsAfterFinished: 1000000000 is not allowed; use a whole number ≥ "
         "0 and ≤ 31,536,000"),
    ],
)  # fmt: skip
def test_d2_a_number_beyond_its_bound_or_not_finite_is_named(
    changes: dict[str, Any], message: str
) -> None:
    """Before, each was taken (and the manager froze, or a worker refused --join-timeout)."""
    with pytest.raises(SpecError) as caught:
        parse_spec(spec(**changes))
    assert message in str(caught.value)


def test_d2_a_gaggle_holds_one_process_bound_for_each_worker() -> None:
    parsed = parse_spec(spec(users=75_000, workers={"replicas": 3}))
    assert parsed.gaggle_args()[2:4] == ["-u", "75000"]
    values, _ = parse_run_args([*parsed.gaggle_args(), "--manager", "--expect-workers", "3"],
                               raise_errors=True, gaggle_flags=True)  # fmt: skip
    assert split_gaggle_options(values) == {"manager": True, "expect_workers": "3"}
    assert build_config(values).users == 75_000  # the manager's command line takes it too
    rated = parse_spec(spec(users=None, hatchRate=None, arrivalRate=200_000, maxUsers=50_000,
                            workers={"replicas": 2}))  # fmt: skip
    assert rated.arrival_rate == 200_000
    with pytest.raises(SpecError, match=r"^spec\.maxUsers: 50001 .* raise workers\.replicas$"):
        parse_spec(spec(users=None, hatchRate=None, arrivalRate=5, maxUsers=50_001,
                        workers={"replicas": 2}))  # fmt: skip


def test_the_crds_maximums_are_the_engines_bounds() -> None:
    """``kubectl apply`` refuses what the operator would: the schema's maximum of each field is
    the bound of the option it sets (the chart's copy of the CRD is checked to match)."""
    document = yaml.safe_load((ROOT / "deploy" / "crd.yaml").read_text())
    schema = document["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]

    def maximum(path: str) -> object:
        node = schema
        for part in path.split("."):
            node = node["properties"][part]
        return node.get("maximum")

    expected = {
        "users": USERS_PER_RUN,
        "maxUsers": USERS_PER_RUN,
        "hatchRate": HATCH_RATE_MAX,
        "arrivalRate": ARRIVALS_PER_RUN,
        "iterations": ITERATIONS_MAX,
        "throttleRequests": THROTTLE_MAX,
        "workers.replicas": MAX_WORKERS,
        "startPolicy.readyTimeoutSeconds": JOIN_TIMEOUT_MAX,
        "activeDeadlineSeconds": SECONDS_MAX,
        "cleanup.ttlSecondsAfterFinished": SECONDS_MAX,
    }
    assert {path: maximum(path) for path in expected} == expected
    (run_time,) = schema["properties"]["runTime"]["x-kubernetes-validations"]
    assert f"self <= {SECONDS_MAX}" in run_time["rule"]
    for path, most in expected.items():  # the operator takes the maximum itself
        top, _, leaf = path.partition(".")
        given: dict[str, Any] = {top: {leaf: most}} if leaf else {top: most}
        if top in ("arrivalRate", "maxUsers"):
            given = {"users": None, "hatchRate": None, "arrivalRate": 5, **given}
        if top in ("users", "maxUsers", "arrivalRate"):
            given["workers"] = {"replicas": MAX_WORKERS}
        if top == "hatchRate":
            given["users"] = 1
        parse_spec(spec(**given))
