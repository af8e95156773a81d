"""A LoadTest's life when things go wrong, on the test cluster (the real control plane and our
node, which runs pods as processes), with the operator on the host: workers that never connect,
an operator that restarts mid-run, a threshold that aborts the run, a spec changed mid-run."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import Target
from tests.support.operator_harness import (
    FINAL,
    Operator,
    loadtest,
    story,
    wait_for_phase,
    wait_until_no_pod_runs,
)

pytestmark = pytest.mark.timeout(180)


def test_workers_that_never_connect_fail_the_run_with_which_pods_and_why(
    namespace: str, kubectl: Any, operator: Operator, bridge_target: tuple[Target, str]
) -> None:
    """k6-operator's runs hung forever when pods could not start (k6-operator#251, #290)."""
    _, url = bridge_target
    crash = {"spec": {"containers": [{"name": "gaggle", "command": ["python"],
                                      "args": ["-c", "raise SystemExit(7)"]}]}}  # fmt: skip
    kubectl.apply(loadtest("stuck", url, workers={"replicas": 2, "template": crash},
                           startPolicy={"readyTimeoutSeconds": 4}))  # fmt: skip
    status = wait_for_phase(kubectl, "stuck", FINAL, operator)
    assert status["phase"] == "Failed", story(kubectl, operator)
    assert status["reason"] == "WorkersNotReady", story(kubectl, operator)
    assert "0/2 worker(s) connected after 4 s" in status["message"]
    assert "stuck-worker-0: Error" in status["message"]
    assert {"name": "stuck-worker-1", "reason": "Error", "exitCode": 7} in status["failedPods"]
    healthy = next(c for c in status["conditions"] if c["type"] == "PodsHealthy")
    assert healthy["status"] == "False"
    wait_until_no_pod_runs(kubectl, operator)


def test_an_operator_restarted_mid_run_picks_it_up_without_duplicates(
    namespace: str, kubectl: Any, operator: Operator, bridge_target: tuple[Target, str]
) -> None:
    target, url = bridge_target
    kubectl.apply(loadtest("web", url, runTime="6s"))
    wait_for_phase(kubectl, "web", ("Running", *FINAL), operator)
    operator.restart()  # SIGKILL, then a fresh process, as a crashed operator pod would be
    status = wait_for_phase(kubectl, "web", FINAL, operator)
    assert status["phase"] == "Succeeded", story(kubectl, operator)
    pods = sorted(p["metadata"]["name"] for p in kubectl.json("get", "pods")["items"])
    assert pods == ["web-manager", "web-worker-0", "web-worker-1"]
    served = target.counts()
    assert "summary" in status, story(kubectl, operator)
    assert status["summary"]["requests"] == served["GET / 200"] + served["GET /landing 200"]


def test_abort_on_fail_stops_the_run_at_the_first_failed_threshold(
    namespace: str, kubectl: Any, operator: Operator, bridge_target: tuple[Target, str]
) -> None:
    _, url = bridge_target
    rules = [{"metric": "requests", "request": "GET /", "op": "<", "value": 5}]
    kubectl.apply(loadtest("abort", url, runTime="60s", thresholds=rules, abortOnFail=True))
    status = wait_for_phase(kubectl, "abort", FINAL, operator)
    assert status["phase"] == "Aborted", story(kubectl, operator)
    assert status["verdict"] == "Failed"
    assert "threshold failed: requests(GET /) < 5" in status["summary"]["stoppedBy"]
    assert status["summary"]["durationSeconds"] < 30  # long before its 60 s


def test_a_spec_change_during_a_run_is_refused_not_applied(
    namespace: str, kubectl: Any, operator: Operator, bridge_target: tuple[Target, str]
) -> None:
    _, url = bridge_target
    # long enough that the change meets the run however slowly the operator sees it (a 5 s run
    # had ended before the update handler ran, on a loaded machine)
    kubectl.apply(loadtest("web", url, runTime="30s"))
    assert wait_for_phase(kubectl, "web", ("Running", *FINAL), operator)["phase"] == "Running"
    # users alone would be taken live (relay.py); with a field a run cannot take, nothing is
    kubectl.apply(loadtest("web", url, runTime="30s", users=40, throttleRequests=5))
    deadline = time.monotonic() + 20
    while True:
        status = kubectl.json("get", "loadtest", "web").get("status", {})
        refused = [c for c in status.get("conditions", []) if c["type"] == "SpecChangeRefused"]
        if refused:
            break
        assert time.monotonic() < deadline, story(kubectl, operator)
        time.sleep(0.3)
    assert "change spec.runId to run it again" in refused[0]["message"]
    status = wait_for_phase(kubectl, "web", FINAL, operator)
    assert status["phase"] == "Succeeded"
    assert status["live"]["users"] == 4  # the run kept the users it started with


def test_a_run_past_its_active_deadline_fails_and_its_load_stops(
    namespace: str, kubectl: Any, operator: Operator, bridge_target: tuple[Target, str]
) -> None:
    target, url = bridge_target
    kubectl.apply(loadtest("late", url, runTime="60s", activeDeadlineSeconds=4))
    status = wait_for_phase(kubectl, "late", FINAL, operator)
    assert status["phase"] == "Failed", story(kubectl, operator)
    assert status["reason"] == "DeadlineExceeded"
    assert status["message"] == "still running after 4 s"
    wait_until_no_pod_runs(kubectl, operator)
    before = target.counts().get("GET / 200", 0)
    time.sleep(1.5)
    assert target.counts().get("GET / 200", 0) == before  # no load after the deadline
