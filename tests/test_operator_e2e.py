"""End to end: `kubectl apply -f loadtest.yaml` → the operator (`kopf run`, a subprocess, as its
Deployment runs it) creates the manager and worker pods → they really run, the workers join the
manager over gRPC through its Service's name and load a counting target on the host → the summary
and verdict land in the status → `kubectl get lt` shows them.

The cluster is tests/cluster: an API emulator and a kubelet that runs pods as processes in their
own network and mount namespaces (no kube-apiserver or container runtime can run on these
machines). Pods use the project's venv instead of an image; everything else is as in a cluster.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.server import Cluster
from tests.conftest import ROOT, Target
from tests.test_gaggle_mode import TEST
from tests.test_operator_crd import CRD

pytestmark = pytest.mark.timeout(180)
FINAL = ("Succeeded", "Failed", "Aborted")


@pytest.fixture
def operator(cluster: Cluster, namespace: str, kubectl: Any, tmp_path: Path) -> Iterator[Path]:
    """The operator as its Deployment runs it, watching the test's namespace; its log's path."""
    kubectl("apply", "-f", str(CRD))
    kubectl("wait", "--for", "condition=established", "crd/loadtests.gaggle.dev", "--timeout=20s")
    log = tmp_path / "operator.log"
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "GAGGLE_IMAGE": "gaggle:test",
           "GAGGLE_OPERATOR_TICK": "1"}  # fmt: skip
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "kopf", "run", "--standalone", "--namespace", namespace,
             "-m", "gaggle.operator.handlers"],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
        )  # fmt: skip
    try:
        yield log
    finally:
        # While the operator still runs, so that it releases its finalizers (kopf holds one
        # while a timer runs) and the namespace goes at once.
        kubectl("delete", "loadtests", "--all", "--timeout=30s", check=False)
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def bridge_target(cluster: Cluster, tmp_path: Path) -> Iterator[tuple[Target, str]]:
    """A counting target the pods can reach: it also listens on the cluster's bridge."""
    port_file = tmp_path / "target.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.target", "--port-file", str(port_file),
         "--also-bind", cluster.kubelet.host_ip],
        cwd=ROOT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while not port_file.exists() or not port_file.read_text():
            assert process.poll() is None, "the target exited"
            assert time.monotonic() < deadline, "the target did not start"
            time.sleep(0.05)
        port = json.loads(port_file.read_text())["port"]
        yield Target(port), f"http://{cluster.kubelet.host_ip}:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def loadtest(name: str, host: str, **spec: Any) -> str:
    body = {"script": {"inline": TEST}, "host": host, "users": 4, "hatchRate": 40,
            "runTime": "3s", "resetMetrics": False, "workers": {"replicas": 2}, **spec}  # fmt: skip
    return yaml.safe_dump({"apiVersion": "gaggle.dev/v1alpha1", "kind": "LoadTest",
                           "metadata": {"name": name}, "spec": body})  # fmt: skip


def story(kubectl: Any, log: Path) -> str:
    """The operator's log and every pod's, for a failure message."""
    parts = [f"--- operator ---\n{log.read_text()[-4000:]}"]
    for pod in kubectl.json("get", "pods")["items"]:
        name = pod["metadata"]["name"]
        logs = kubectl("logs", name, check=False)
        parts.append(f"--- {name} ({pod['status'].get('phase')}) ---\n{logs.stdout[-3000:]}"
                     f"{logs.stderr[-1000:]}")  # fmt: skip
    return "\n".join(parts)


def wait_for_phase(kubectl: Any, name: str, phases: tuple[str, ...], log: Path) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        status: dict[str, Any] = kubectl.json("get", "loadtest", name).get("status", {})
        if status.get("phase") in phases:
            return status
        assert time.monotonic() < deadline, f"{status}\n{story(kubectl, log)}"
        time.sleep(0.5)


def test_a_loadtest_runs_to_an_exact_summary_and_verdict(
    cluster: Cluster, namespace: str, kubectl: Any, operator: Path,
    bridge_target: tuple[Target, str],
) -> None:  # fmt: skip
    target, url = bridge_target
    thresholds = [{"metric": "failRatio", "op": "<", "value": 0.01},
                  {"metric": "requests", "request": "GET /", "op": ">", "value": 10}]  # fmt: skip
    kubectl.apply(loadtest("web", url, thresholds=thresholds))
    status = wait_for_phase(kubectl, "web", FINAL, operator)
    assert status["phase"] == "Succeeded", f"{status}\n{story(kubectl, operator)}"
    assert status["verdict"] == "Passed"
    served = target.counts()
    assert status["summary"]["requests"] == served["GET / 200"] + served["GET /landing 200"] > 10
    assert status["summary"]["failures"] == 0
    assert status["workers"]["desired"] == 2
    assert status["workers"]["lost"] == 0
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions | {"Validated": "True", "ResourcesCreated": "True", "Completed": "True",
                         "ThresholdsPassed": "True"} == conditions  # fmt: skip
    table = kubectl("get", "lt", "web").stdout
    assert "Succeeded" in table
    assert "Passed" in table
    # The manager pod used its own ServiceAccount, and only on its own LoadTest and summary.
    touched = cluster.requests_by(namespace, "web-manager")
    assert touched, "the manager never wrote its status"
    allowed = (f"/apis/gaggle.dev/v1alpha1/namespaces/{namespace}/loadtests/web/status",
               f"/api/v1/namespaces/{namespace}/configmaps/web-summary")  # fmt: skip
    assert {path for _, path in touched} <= set(allowed)
    events = kubectl.json("get", "events", "--field-selector", "involvedObject.name=web")
    reasons = {event["reason"] for event in events["items"]}
    assert {"Started", "Running", "Succeeded"} <= reasons, reasons


def test_a_bad_spec_is_refused_with_the_field_named_and_nothing_created(
    namespace: str, kubectl: Any, operator: Path
) -> None:
    kubectl.apply(loadtest("bad", "http://127.0.0.1:9", users=0))
    status = wait_for_phase(kubectl, "bad", FINAL, operator)
    assert status["phase"] == "Failed"
    validated = next(c for c in status["conditions"] if c["type"] == "Validated")
    assert validated["status"] == "False"
    assert "spec.users: 0 is not allowed; use a whole number ≥ 1" in validated["message"]
    assert kubectl.json("get", "pods")["items"] == []
    assert kubectl.json("get", "configmaps", "-l", "gaggle.dev/loadtest=bad")["items"] == []


def test_a_failed_threshold_is_the_verdict_and_cleanup_keeps_the_status(
    namespace: str, kubectl: Any, operator: Path, bridge_target: tuple[Target, str]
) -> None:
    _, url = bridge_target
    thresholds = [{"metric": "p99", "op": "<", "value": 0.001}]  # no real request is that fast
    cleanup = {"policy": "Always", "ttlSecondsAfterFinished": 1}
    kubectl.apply(loadtest("slow", url, runTime="2s", thresholds=thresholds, cleanup=cleanup))
    status = wait_for_phase(kubectl, "slow", FINAL, operator)
    assert status["phase"] == "Succeeded", f"{status}\n{story(kubectl, operator)}"
    assert status["verdict"] == "Failed"
    (rule,) = status["thresholds"]
    assert rule["expression"] == "p99 < 0.001"
    assert rule["passed"] is False
    assert rule["observed"] > 0.001
    passed = next(c for c in status["conditions"] if c["type"] == "ThresholdsPassed")
    assert (passed["status"], passed["message"]) == ("False", "failed: p99 < 0.001")
    deadline = time.monotonic() + 30
    while not kubectl.json("get", "loadtest", "slow").get("status", {}).get("cleanedUp"):
        assert time.monotonic() < deadline, story(kubectl, operator)
        time.sleep(0.5)
    remaining = kubectl.json("get", "pods,services,secrets", "-l", "gaggle.dev/loadtest=slow")
    assert remaining["items"] == []
    assert kubectl.json("get", "configmap", "slow-summary")["data"]["summary.json"]  # kept
    assert kubectl.json("get", "loadtest", "slow")["status"]["summary"]["requests"] > 0


def test_a_deleted_worker_pod_leaves_and_the_run_goes_on_exactly(
    namespace: str, kubectl: Any, operator: Path, bridge_target: tuple[Target, str]
) -> None:
    target, url = bridge_target
    kubectl.apply(loadtest("web", url, runTime="6s"))
    wait_for_phase(kubectl, "web", ("Running", *FINAL), operator)
    kubectl("delete", "pod", "web-worker-1", "--wait=false")
    status = wait_for_phase(kubectl, "web", FINAL, operator)
    assert status["phase"] == "Succeeded", f"{status}\n{story(kubectl, operator)}"
    assert status["workers"]["lost"] == 1
    served = target.counts()
    # The leaving worker flushed its final delta: the summary is still exact.
    assert status["summary"]["requests"] == served["GET / 200"] + served["GET /landing 200"]


def test_deleting_a_loadtest_mid_run_removes_everything_and_stops_the_load(
    namespace: str, kubectl: Any, operator: Path, bridge_target: tuple[Target, str]
) -> None:
    target, url = bridge_target
    kubectl.apply(loadtest("web", url, runTime="60s"))
    wait_for_phase(kubectl, "web", ("Running", *FINAL), operator)
    kubectl("delete", "loadtest", "web", "--timeout=60s")
    deadline = time.monotonic() + 30
    kinds = "pods,services,configmaps,secrets,serviceaccounts,roles,rolebindings"
    while kubectl.json("get", kinds, "-l", "gaggle.dev/loadtest=web")["items"] or any(
        item["metadata"]["name"].startswith("web-") for item in kubectl.json("get", kinds)["items"]
    ):
        assert time.monotonic() < deadline, kubectl("get", kinds).stdout
        time.sleep(0.5)
    time.sleep(1)  # anything still sending would show now
    before = target.counts().get("GET / 200", 0)
    time.sleep(1.5)
    assert target.counts().get("GET / 200", 0) == before


def test_bad_specs_are_refused_naming_the_field(
    namespace: str, kubectl: Any, operator: Path
) -> None:
    cases = {
        "two-scripts": ({"script": {"inline": TEST, "path": "/t.py"}}, "spec.script: ["),
        "bad-args": ({"args": ["--no-such-flag"]}, "spec.args: ['--no-such-flag']"),
        "no-configmap": ({"script": {"configMap": {"name": "missing"}}},
                         "ConfigMap 'missing' not found"),
    }  # fmt: skip
    for name, (spec, _) in cases.items():
        kubectl.apply(loadtest(name, "http://127.0.0.1:9", **spec))
    for name, (_, words) in cases.items():
        status = wait_for_phase(kubectl, name, FINAL, operator)
        assert status["phase"] == "Failed"
        assert words in status["message"], status
    assert kubectl.json("get", "pods")["items"] == []


def test_a_new_run_id_runs_the_test_again_with_the_new_script(
    namespace: str, kubectl: Any, operator: Path, bridge_target: tuple[Target, str]
) -> None:
    target, url = bridge_target
    kubectl.apply(loadtest("web", url, runTime="2s", runId="1"))
    first = wait_for_phase(kubectl, "web", FINAL, operator)
    assert first["phase"] == "Succeeded", story(kubectl, operator)
    assert target.counts().get("GET /about/ 200", 0) == 0
    second_script = TEST.replace('await self.get("/")', 'await self.get("/about/")')
    kubectl.apply(loadtest("web", url, runTime="2s", runId="2",
                           script={"inline": second_script}))  # fmt: skip
    deadline = time.monotonic() + 90
    while True:
        status = kubectl.json("get", "loadtest", "web").get("status", {})
        if status.get("runId") == "2" and status.get("phase") in FINAL:
            break
        assert time.monotonic() < deadline, f"{status}\n{story(kubectl, operator)}"
        time.sleep(0.5)
    assert status["phase"] == "Succeeded"
    served = target.counts()
    first_landings = first["summary"]["requests"] - served["GET / 200"]  # run 1: / and /landing
    second_landings = served["GET /landing 200"] - first_landings
    assert status["summary"]["requests"] == served["GET /about/ 200"] + second_landings
