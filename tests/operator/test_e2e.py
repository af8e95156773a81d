"""End to end, as users run it: `helm install` the chart → the operator runs as its Deployment's
pod on the real node (uid 10001, read-only root, its own ServiceAccount, RBAC enforced by the
real API server) → `kubectl apply -f loadtest.yaml` → it creates the manager and worker pods →
they really run, the workers join the manager over gRPC through its Service's name (cluster DNS)
and load a counting target on the host → the summary and verdict land in the status → `kubectl
get lt` shows them.

The cluster is tests/cluster: the real control plane and a real node (kubelet, containerd, runc,
kube-proxy) that runs every pod as a container of the image built from the Dockerfile.
"""

from __future__ import annotations

import base64
import gzip
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from gaggle_operator.children import METRICS_PORT
from tests.cluster import binaries
from tests.cluster.cluster import Cluster
from tests.cluster.fixtures import Kubectl
from tests.conftest import ROOT, Target
from tests.gaggle_mode.test_mode import TEST
from tests.operator.test_crd import CRD
from tests.operator.test_schedule_e2e import Schedules, schedules_started
from tests.project.test_deploy import documents, operator_env, render
from tests.report.test_dashboard import wait_for_scrapes
from tests.support.operator_harness import (
    FINAL,
    Installed,
    installing,
    loadtest,
    story,
    wait_for_phase,
)
from tests.support.prometheus import query, running_prometheus

pytestmark = pytest.mark.timeout(240)

Operator = Installed


POOL = 16  # namespaces the module's operator watches: one a test, more than there are tests


@pytest.fixture(scope="module")
def release(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Installed, list[str]]]:
    """One release for the module (an install takes a while), watching a pool of namespaces,
    each handed to one test."""
    names = [f"e2e-{uuid.uuid4().hex[:6]}-{i}" for i in range(POOL)]
    for name in names:
        cluster.kubectl("create", "namespace", name)
    kubectl = Kubectl(cluster.kubeconfig, tmp_path_factory.mktemp("e2e") / "kube-cache", names[0])
    with installing(cluster, names, kubectl) as installed:
        yield installed, list(names)
    for name in names:
        cluster.kubectl("delete", "namespace", name, "--wait=false")


SCHEDULE_TESTS = (
    "test_the_operator_restarted_mid_schedule_takes_it_up_from_the_status",
    "test_loadtests_on_a_one_minute_schedule_ran_in_a_row_and_skipped_under_forbid",
)


@pytest.fixture(scope="module", autouse=True)
def schedules(
    request: pytest.FixtureRequest, cluster: Cluster, release: tuple[Installed, list[str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Schedules | None]:  # fmt: skip
    """Two LoadTests on a one-minute schedule, made as the module starts (when its schedule
    tests are to run): the minutes they need pass while the other tests run, and the module's
    last test checks them (tests/operator/test_schedule_e2e.py says what)."""
    if not any(item.name in SCHEDULE_TESTS for item in request.session.items):
        yield None
        return
    with schedules_started(cluster, release[1].pop(), tmp_path_factory.mktemp("schedules")) as made:
        yield made


@pytest.fixture
def namespace(cluster: Cluster, release: tuple[Installed, list[str]]) -> Iterator[str]:
    """Here a namespace the module's operator watches, new to this test."""
    free = release[1]
    assert free, "raise POOL: more tests than watched namespaces"
    name = free.pop()
    yield name
    # stop what the test left running, while the operator is there to release its finalizers
    cluster.kubectl("delete", "loadtests", "--all", "-n", name, "--wait=false")


@pytest.fixture
def operator(release: tuple[Installed, list[str]]) -> Installed:
    """Here the operator is the installed chart's."""
    return release[0]


@pytest.fixture
def unwatched(cluster: Cluster, tmp_path: Path) -> Iterator[tuple[str, Kubectl]]:
    """A namespace no operator watches yet, for a test that installs its own release."""
    name = f"test-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    try:
        yield name, Kubectl(cluster.kubeconfig, tmp_path / "kube-cache", name)
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false")


def test_a_loadtest_runs_to_an_exact_summary_and_verdict(
    cluster: Cluster, namespace: str, kubectl: Any, operator: Operator,
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
    # its history, kept by the installed operator (its ClusterRole lists ConfigMaps)
    (kept,) = status["history"]
    assert (kept["runId"], kept["requests"]) == ("0", status["summary"]["requests"])
    assert kubectl.json("get", "cm", "web-run-0")["data"]["summary.json"]
    assert status["workers"]["desired"] == 2
    assert status["workers"]["lost"] == 0
    # the HTML report, written in the pod's read-only-root container, outlives it (finding 15)
    assert status["report"]["kept"] is True, status["report"]
    path = "jsonpath={.binaryData.report\\.html\\.gz}"  # README's command
    kept = kubectl("get", "cm", "web-summary", "-o", path).stdout
    assert b"GET /landing" in gzip.decompress(base64.b64decode(kept))
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions | {"Validated": "True", "ResourcesCreated": "True", "WorkersReady": "True",
                         "Started": "True", "Completed": "True",
                         "ThresholdsPassed": "True"} == conditions  # fmt: skip
    table = kubectl("get", "lt", "web").stdout
    assert "Succeeded" in table
    assert "Passed" in table
    # The manager pod used its own ServiceAccount, and only on its own LoadTest and summary.
    touched = cluster.requests_by(namespace, "web-manager")
    assert touched, "the manager never wrote its status"
    allowed = (f"/apis/gaggle.dev/v1alpha1/namespaces/{namespace}/loadtests/web/status",
               f"/api/v1/namespaces/{namespace}/configmaps/web-summary")  # fmt: skip
    assert {uri.split("?")[0] for _, uri, _ in touched} <= set(allowed)
    assert all(code < 400 for _, _, code in touched), touched
    # Running too when the run began and ended between two of the operator's looks (item 10);
    # kopf posts Events from a queue of its own, apart from the status patch: wait, bounded
    deadline = time.monotonic() + 30
    while True:
        events = kubectl.json("get", "events", "--field-selector", "involvedObject.name=web")
        reasons = {event["reason"] for event in events["items"]}
        if {"Started", "Running", "Succeeded"} <= reasons:
            break
        assert time.monotonic() < deadline, reasons
        time.sleep(0.2)


def test_an_open_model_loadtest_starts_its_arrivals_on_schedule_and_counts_them_exactly(
    namespace: str, kubectl: Any, operator: Operator, bridge_target: tuple[Target, str]
) -> None:
    """spec.arrivalRate: 20 iterations a second for 3 s over 2 workers are 60 arrivals, each
    started or dropped and counted; the summary's requests are what the target served."""
    target, url = bridge_target
    open_model = {"users": None, "hatchRate": None, "arrivalRate": 20, "maxUsers": 50}
    kubectl.apply(loadtest("arrivals", url, **open_model))
    status = wait_for_phase(kubectl, "arrivals", FINAL, operator)
    assert status["phase"] == "Succeeded", f"{status}\n{story(kubectl, operator)}"
    arrivals = status["summary"]["arrivals"]
    assert arrivals["scheduled"] == 60, arrivals
    assert arrivals["started"] + arrivals["dropped"] == 60
    served = target.counts()
    assert status["summary"]["requests"] == served["GET / 200"] + served["GET /landing 200"] > 0
    refused = kubectl("apply", "-f", "-", input=loadtest("both", url, arrivalRate=5), check=False)
    assert refused.returncode != 0
    assert "spec.plan: give a plan, or users and runTime" in refused.stderr, refused.stderr


def test_a_bad_spec_is_refused_with_the_field_named_and_nothing_created(
    namespace: str, kubectl: Any, operator: Operator
) -> None:
    # what the CRD's schema can say, the API server refuses at once, naming the field
    refused = kubectl("apply", "-f", "-", input=loadtest("bad", "http://127.0.0.1:9", users=0),
                      check=False)  # fmt: skip
    assert refused.returncode != 0
    assert (
        "spec.users: Invalid value: 0: spec.users in body should be greater than or equal to 1"
        in (refused.stderr)
    )
    # what it cannot, the operator refuses
    kubectl.apply(loadtest("bad", "http://127.0.0.1:9", runTime="soon"))
    status = wait_for_phase(kubectl, "bad", FINAL, operator)
    assert status["phase"] == "Failed"
    validated = next(c for c in status["conditions"] if c["type"] == "Validated")
    assert validated["status"] == "False"
    assert "spec.runTime: 'soon'" in validated["message"], validated
    assert kubectl.json("get", "pods")["items"] == []
    assert kubectl.json("get", "configmaps", "-l", "gaggle.dev/loadtest=bad")["items"] == []


def test_a_failed_threshold_is_the_verdict_and_cleanup_keeps_the_status(
    namespace: str, kubectl: Any, operator: Operator, bridge_target: tuple[Target, str]
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
    namespace: str, kubectl: Any, operator: Operator, bridge_target: tuple[Target, str]
) -> None:
    target, url = bridge_target
    kubectl.apply(loadtest("web", url, runTime="6s"))
    wait_for_phase(kubectl, "web", ("Running", *FINAL), operator)
    kubectl("delete", "pod", "web-worker-1", "--wait=false")
    status = wait_for_phase(kubectl, "web", FINAL, operator)
    assert status["phase"] == "Succeeded", f"{status}\n{story(kubectl, operator)}"
    assert status["workers"]["lost"] == 1
    served = target.counts()
    # The leaving worker flushed its final delta: the summary is still exact. A request cut
    # while its pod went away is a failure Gaggle counts and the target may not have finished.
    summary = status["summary"]
    succeeded = summary["requests"] - summary["failures"]
    assert succeeded == served["GET / 200"] + served["GET /landing 200"], (summary, served)


def test_deleting_a_loadtest_mid_run_removes_everything_and_stops_the_load(
    namespace: str, kubectl: Any, operator: Operator, bridge_target: tuple[Target, str]
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
    namespace: str, kubectl: Any, operator: Operator
) -> None:
    two = loadtest("two-scripts", "http://127.0.0.1:9", script={"inline": TEST, "path": "/t.py"})
    refused = kubectl("apply", "-f", "-", input=two, check=False)  # the CRD's CEL rule
    assert "spec.script: give exactly one of inline, configMap or path" in refused.stderr
    cases = {
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
    namespace: str, kubectl: Any, operator: Operator, bridge_target: tuple[Target, str]
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


def test_the_operator_restarted_mid_schedule_takes_it_up_from_the_status(
    schedules: Schedules | None, operator: Installed
) -> None:
    """Its pod deleted after the schedule's first run, the Deployment's next operator reads the
    schedule from the status alone; the module's last test checks that no due time doubled or
    went missing across it."""
    assert schedules is not None
    schedules.restart_mid_schedule(operator)


def wait_for_live(kubectl: Any, name: str, operator: Operator, key: str, value: object) -> None:
    """Until the Running LoadTest's status.live says ``key`` is ``value`` (the manager writes it
    every 3 s)."""
    deadline = time.monotonic() + 20
    while True:
        status = kubectl.json("get", "loadtest", name).get("status", {})
        if status.get("live", {}).get(key) == value:
            return
        assert status.get("phase") == "Running", f"{status}\n{story(kubectl, operator)}"
        assert time.monotonic() < deadline, f"{status}\n{story(kubectl, operator)}"
        time.sleep(0.5)


def test_patching_a_running_loadtest_changes_the_running_test(
    namespace: str, kubectl: Any, operator: Operator, bridge_target: tuple[Target, str]
) -> None:
    """users, then runTime, patched on a Running LoadTest: the operator relays each to its
    manager's control API (the Service's metrics port, the LoadTest's token), records it in
    status.changes and an Event; another field stays refused; the totals stay exact."""
    target, url = bridge_target
    kubectl.apply(loadtest("web", url, users=2, runTime="60s"))
    wait_for_phase(kubectl, "web", ("Running", *FINAL), operator)
    kubectl("patch", "lt", "web", "--type", "merge", "-p", '{"spec":{"users":6}}')
    wait_for_live(kubectl, "web", operator, "users", 6)
    kubectl("patch", "lt", "web", "--type", "merge", "-p", '{"spec":{"throttleRequests":5}}')
    kubectl("patch", "lt", "web", "--type", "merge", "-p", '{"spec":{"runTime":"1s"}}')
    status = wait_for_phase(kubectl, "web", FINAL, operator)
    assert status["phase"] == "Succeeded", f"{status}\n{story(kubectl, operator)}"
    assert status["summary"]["stoppedBy"] == "run time elapsed"  # not the 60 s it began with
    assert [(c["change"], c["result"]) for c in status["changes"]] == [
        ("users 2 → 6", "applied"),
        ("runTime 60s → 1s", "applied"),
    ]
    conditions = {c["type"]: c["reason"] for c in status["conditions"]}
    assert conditions["SpecChangeRefused"] == "RunInProgress"  # throttleRequests: not live
    events = kubectl.json("get", "events", "--field-selector", "involvedObject.name=web")
    live = [e["message"] for e in events["items"] if e["reason"] == "LiveChange"]
    assert sorted(live) == ["runTime 60s → 1s", "users 2 → 6"], live
    served = target.counts()  # resetMetrics false: the summary counts the whole run
    assert status["summary"]["requests"] == served["GET / 200"] + served["GET /landing 200"]
    assert served["GET /landing 200"] == 6  # 2 users, 4 added: each ran its on_stop once


def test_patching_a_running_open_model_changes_its_arrival_rate(
    namespace: str, kubectl: Any, operator: Operator, bridge_target: tuple[Target, str]
) -> None:
    """arrivalRate patched on a Running LoadTest: its manager and both workers switch to the
    new rate together (status.live says it), then runTime ends it; every arrival counted."""
    target, url = bridge_target
    open_model = {"users": None, "hatchRate": None, "arrivalRate": 10, "runTime": "60s"}
    kubectl.apply(loadtest("arrivals", url, **open_model))
    wait_for_phase(kubectl, "arrivals", ("Running", *FINAL), operator)
    kubectl("patch", "lt", "arrivals", "--type", "merge", "-p", '{"spec":{"arrivalRate":40}}')
    wait_for_live(kubectl, "arrivals", operator, "arrivalRate", 40)
    kubectl("patch", "lt", "arrivals", "--type", "merge", "-p", '{"spec":{"runTime":"1s"}}')
    status = wait_for_phase(kubectl, "arrivals", FINAL, operator)
    assert status["phase"] == "Succeeded", f"{status}\n{story(kubectl, operator)}"
    assert [(c["change"], c["result"]) for c in status["changes"]] == [
        ("arrivalRate 10 → 40", "applied"),
        ("runTime 60s → 1s", "applied"),
    ]
    arrivals = status["summary"]["arrivals"]
    assert arrivals["dropped"] == 0, arrivals
    served = target.counts()
    assert status["summary"]["requests"] == served["GET / 200"] + served["GET /landing 200"]
    assert arrivals["started"] == served["GET / 200"]  # one request an iteration


def test_a_real_prometheus_scrapes_the_manager_pod(
    namespace: str, kubectl: Any, operator: Operator, bridge_target: tuple[Target, str],
    tmp_path: Path,
) -> None:  # fmt: skip
    """As a PodMonitor would: the manager pod's IP, port `metrics`, the LoadTest as a label.
    The run goes on until Prometheus has seen it (on a loaded machine its start-up and first
    scrapes took longer than a short run), then a patch of its run time ends it."""
    _, url = bridge_target
    kubectl.apply(loadtest("web", url, runTime="5m", resetMetrics=True))
    wait_for_phase(kubectl, "web", ("Running", *FINAL), operator)
    pod = kubectl.json("get", "pod", "web-manager")
    address = f"{pod['status']['podIP']}:{METRICS_PORT}"
    labels = {"namespace": namespace, "loadtest": "web"}
    with running_prometheus(tmp_path, address, labels) as prometheus:
        wait_for_scrapes(prometheus, 3)
        expr = f'sum(gaggle_requests_total{{namespace="{namespace}",loadtest="web"}})'
        deadline = time.monotonic() + 20
        while not (found := query(prometheus, expr)) or float(found[0]["value"][1]) <= 0:
            assert time.monotonic() < deadline, found
            time.sleep(0.5)
    kubectl("patch", "lt", "web", "--type", "merge", "-p", '{"spec":{"runTime":"1s"}}')
    status = wait_for_phase(kubectl, "web", FINAL, operator)
    assert status["phase"] == "Succeeded", story(kubectl, operator)


WORKER = {"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}
MANAGER = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}
CHART_DEFAULTS = """
defaults:
  manager: {resources: {requests: {cpu: 100m, memory: 128Mi}}}
  worker: {resources: {requests: {cpu: 250m, memory: 64Mi}, limits: {memory: 256Mi}}}
  cleanup: {policy: Always, ttlSecondsAfterFinished: 6}
"""


def test_the_charts_defaults_size_the_pods_and_clean_up_after_the_default_ttl(
    cluster: Cluster, unwatched: tuple[str, Kubectl], bridge_target: tuple[Target, str],
) -> None:  # fmt: skip
    """The operator installed with the chart's ``defaults`` values runs with the GAGGLE_*
    variables they render; the LoadTest says nothing of cleanup and sets only the manager's
    memory limit."""
    _, url = bridge_target
    rendered = operator_env(documents(render(values=CHART_DEFAULTS)))
    env = {k: v for k, v in rendered.items() if k.startswith("GAGGLE_") and k != "GAGGLE_IMAGE"}
    assert env["GAGGLE_TTL_SECONDS_AFTER_FINISHED"] == "6"
    limit = {"limits": {"memory": "512Mi"}}
    manager = {"template": {"spec": {"containers": [{"name": "gaggle", "resources": limit}]}}}
    namespace, kubectl = unwatched
    with installing(cluster, namespace, kubectl, CHART_DEFAULTS) as operator:
        deployed = operator.kubectl.json("get", "deployment", operator.name)["spec"]["template"][
            "spec"
        ]
        assert {e["name"]: e.get("value") for e in deployed["containers"][0]["env"]} | env == {
            e["name"]: e.get("value") for e in deployed["containers"][0]["env"]
        }
        kubectl.apply(loadtest("sized", url, runTime="2s", manager=manager))
        wait_for_phase(kubectl, "sized", ("WaitingForWorkers", "Running", *FINAL), operator)
        for index in (0, 1):
            worker = kubectl.json("get", "pod", f"sized-worker-{index}")
            assert worker["spec"]["containers"][0]["resources"] == WORKER
        # the LoadTest's template wins where it speaks (the limit); the default fills the rest
        pod = kubectl.json("get", "pod", "sized-manager")
        assert pod["spec"]["containers"][0]["resources"] == MANAGER
        status = wait_for_phase(kubectl, "sized", FINAL, operator)
        assert status["phase"] == "Succeeded", f"{status}\n{story(kubectl, operator)}"
        assert "cleanup" not in kubectl.json("get", "loadtest", "sized")["spec"]
        ended = datetime.fromisoformat(status["endTime"].replace("Z", "+00:00")).timestamp()
        # endTime is whole seconds, so the operator cleans up 6-7 s after it: at 3 s (a zero
        # TTL would have cleaned up within a tick) everything is still there
        time.sleep(max(0.0, ended + 3 - datetime.now(UTC).timestamp()))
        assert not kubectl.json("get", "loadtest", "sized")["status"].get("cleanedUp")
        assert kubectl.json("get", "pods,services", "-l", "gaggle.dev/loadtest=sized")["items"]
        deadline = time.monotonic() + 30
        while not kubectl.json("get", "loadtest", "sized")["status"].get("cleanedUp"):
            assert time.monotonic() < deadline, story(kubectl, operator)
            time.sleep(0.5)
        assert datetime.now(UTC).timestamp() >= ended + 6
        remaining = kubectl.json("get", "pods,services,secrets", "-l", "gaggle.dev/loadtest=sized")
        assert remaining["items"] == []
        assert kubectl.json("get", "loadtest", "sized")["status"]["summary"]["requests"] > 0


def test_the_installed_operator_runs_as_its_deployment_says_and_rbac_holds_it(
    cluster: Cluster, namespace: str, kubectl: Any, operator: Installed
) -> None:
    pod = operator.pod()
    assert pod is not None
    assert pod["spec"]["serviceAccountName"] == operator.name
    assert pod["status"]["phase"] == "Running"
    # uid 10001 as the chart says, on a read-only root: asked inside its container (kubectl
    # exec through the kubelet), where PID 1 is the operator itself
    probe = ("import pathlib\n"
             "print(pathlib.Path('/proc/1/cmdline').read_text().replace(chr(0), ' '))\n"
             "print(pathlib.Path('/proc/1/status').read_text().split('Uid:')[1].split()[:4])\n"
             "try:\n    open('/written', 'w')\nexcept OSError as error:\n"
             "    print(error.strerror)\n")  # fmt: skip
    inside = operator.kubectl("exec", pod["metadata"]["name"], "--", "python", "-c", probe)
    command, uids, write = inside.stdout.splitlines()
    assert "/gaggle-operator run " in command, command
    assert uids == "['10001', '10001', '10001', '10001']", uids
    assert write == "Read-only file system", write
    # it holds its release's Lease, named for its pod (the downward API's POD_NAME)
    deadline = time.monotonic() + 30
    while f"holding Lease {operator.namespace}/{operator.name}" not in operator.read():
        assert time.monotonic() < deadline, operator.read()
        time.sleep(0.3)
    lease = operator.kubectl.json("get", "lease", operator.name)
    assert lease["spec"]["holderIdentity"] == pod["metadata"]["name"]
    # the real API server holds it to its role: it may not read Secrets of other namespaces,
    # nor Nodes, which its ClusterRole does not grant
    account = f"system:serviceaccount:{operator.namespace}:{operator.name}"
    for verb, what in (("list", "nodes"), ("get", "secrets -n kube-system"), ("delete", "crd")):
        answer = kubectl("auth", "can-i", verb, *what.split(), "--as", account, check=False)
        assert answer.stdout.strip() == "no", (verb, what)
    token = operator.kubectl("create", "token", operator.name).stdout.strip()
    assert cluster.control is not None
    assert cluster.control.pki is not None
    as_operator = [
        str(binaries.BIN / "kubectl"),
        "--kubeconfig=/dev/null",
        f"--server={cluster.url}",
        f"--certificate-authority={cluster.control.pki.ca}",
        f"--token={token}",
    ]
    denied = subprocess.run([*as_operator, "get", "nodes"], capture_output=True, text=True)
    assert f'User "{account}" cannot list resource "nodes"' in denied.stderr
    allowed = subprocess.run([*as_operator, "get", "loadtests", "-n", namespace],
                             capture_output=True, text=True)  # fmt: skip
    assert allowed.returncode == 0, allowed.stderr


def test_finding_12_namespace_users_with_edit_or_view_may_use_loadtests(
    cluster: Cluster, namespace: str, kubectl: Any, operator: Installed, tmp_path: Path
) -> None:
    """The built-in edit and view roles cover LoadTests through the chart's aggregated
    ClusterRoles: a developer with `edit` in a namespace creates one, a `view` user reads it."""
    for user, role in (("dev", "edit"), ("watcher", "view")):
        kubectl(
            "create", "rolebinding", f"{user}-{role}", f"--clusterrole={role}", f"--user={user}"
        )
    dev = kubectl.as_user(cluster.kubeconfig_for("dev", (), namespace))
    watcher = kubectl.as_user(cluster.kubeconfig_for("watcher", (), namespace))
    made = dev("apply", "-f", "-", input=loadtest("mine", "http://h"), check=False)
    assert made.returncode == 0, made.stderr
    assert dev("delete", "loadtest", "mine", "--wait=false", check=False).returncode == 0
    assert watcher("get", "loadtests", check=False).returncode == 0
    refused = watcher("apply", "-f", "-", input=loadtest("theirs", "http://h"), check=False)
    assert 'cannot create resource "loadtests"' in refused.stderr, refused.stderr


# The chart as released before this one (chart 0.1.0: `kopf run --standalone`, no Lease), from
# the repository's history: `helm upgrade` from it must carry a running LoadTest to its end.
PREVIOUS_CHART = ("0.1.0", "f577be93c589573a4d5e1e8a06dc8eb700ad71e8")


def previous_chart(folder: Path) -> Path:
    version, commit = PREVIOUS_CHART
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "charts/gaggle"],
                             capture_output=True, timeout=60, check=True)  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True, timeout=60)
    chart = folder / "charts" / "gaggle"
    assert yaml.safe_load((chart / "Chart.yaml").read_text())["version"] == version
    return chart


def test_helm_upgrade_from_the_previous_chart_keeps_a_run_going_and_uninstall_removes_it(
    cluster: Cluster,
    unwatched: tuple[str, Kubectl],
    bridge_target: tuple[Target, str],
    tmp_path: Path,
) -> None:
    """Installed from chart 0.1.0, a LoadTest running, then `helm upgrade` to this chart: the
    new operator (behind its Lease) resumes the run, which ends exact. The CRD, applied apart
    with kubectl, is left alone though this release now says installCRDs=true (finding 24:
    before, Helm refused the install on the CRD's ownership)."""
    target, url = bridge_target
    namespace, kubectl = unwatched
    kubectl("apply", "-f", str(CRD))  # as a cluster admin would, apart from Helm
    kubectl("wait", "--for", "condition=established", "crd/loadtests.gaggle.dev", "--timeout=20s")
    crd_before = kubectl.json("get", "crd", "loadtests.gaggle.dev")["metadata"]
    assert "meta.helm.sh/release-name" not in (crd_before.get("annotations") or {})
    release = Installed(cluster, [namespace], kubectl)
    release.install_chart(previous_chart(tmp_path))
    try:
        first = release.pod()
        assert first is not None
        kubectl.apply(loadtest("across", url, runTime="25s"))
        wait_for_phase(kubectl, "across", ("Running",), release)
        running_since = time.monotonic()
        upgraded = release.helm(
            "upgrade", release.release, str(ROOT / "charts" / "gaggle"), "--reuse-values",
            "--set", "installCRDs=true", "--set", "defaults.cleanup.policy=Always",
            "--wait", "--timeout", "120s",
        )  # fmt: skip
        assert time.monotonic() - running_since < 25, "the run ended before the new operator"
        assert "already installed outside Helm: this release left it" in upgraded.stdout
        second = release.pod()
        assert second is not None
        assert second["metadata"]["uid"] != first["metadata"]["uid"]
        assert second["spec"]["containers"][0]["command"] == ["gaggle-operator"]
        status = wait_for_phase(kubectl, "across", FINAL, release)
        assert status["phase"] == "Succeeded", f"{status}\n{story(kubectl, release)}"
        served = target.counts()
        assert status["summary"]["requests"] == served["GET / 200"] + served["GET /landing 200"]
        crd_after = kubectl.json("get", "crd", "loadtests.gaggle.dev")["metadata"]
        assert crd_after.get("annotations") == crd_before.get("annotations")
        history = release.helm("history", release.release, "-o", "json").stdout
        assert [r["chart"] for r in json.loads(history)] == ["gaggle-0.1.0", "gaggle-0.2.0"]
        secrets = release.kubectl.json("get", "secrets", "-l", "owner=helm")["items"]
        assert len(secrets) == 2  # helm keeps its releases in Secrets
        kubectl("delete", "loadtest", "across", "--timeout=30s")  # while its operator runs
    finally:
        release.uninstall(check=False)
    assert release.kubectl.json("get", "deployments")["items"] == []
    deadline = time.monotonic() + 60  # the garbage collector takes the pod after
    while release.kubectl.json("get", "pods")["items"]:
        assert time.monotonic() < deadline, "the operator's pod outlived its release"
        time.sleep(0.5)
    assert release.kubectl.json("get", "secrets", "-l", "owner=helm")["items"] == []
    assert not kubectl("get", "clusterrole", release.name, "--ignore-not-found").stdout
    assert kubectl.json("get", "crd", "loadtests.gaggle.dev")  # never the release's to delete


@pytest.mark.timeout(480)
def test_loadtests_on_a_one_minute_schedule_ran_in_a_row_and_skipped_under_forbid(
    schedules: Schedules | None, operator: Installed
) -> None:
    """The issue's done means: on a one-minute schedule with history limit 2, at least three runs
    in a row (each due minute once, across the operator's restart), two history entries, the
    oldest pruned; and a due time while a run waits is skipped and said (Forbid)."""
    assert schedules is not None
    schedules.check(operator)
