"""The operator-hardening findings, each proven on the test cluster. Above all, a LoadTest never
hangs without a phase: what the real API server refuses, and children that
vanish, end in ``Failed`` with a reason, the API server's own words and a Warning Event
(operator-hardening; finding numbers as in ../shared/reviews/operator-on-a-real-cluster.md).

On the test cluster (tests/cluster: the real control plane and a real node), with the operator on
the host as ``gaggle-operator run`` (kopf behind its Lease), unless a test installs the chart."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gaggle.kits.ports import GRPC_PORT, METRICS_PORT
from tests.cluster.cluster import Cluster
from tests.cluster.realnode import NODE
from tests.conftest import Target
from tests.support.operator_harness import (
    CRD,
    FINAL,
    Operator,
    installing,
    loadtest,
    operating,
    story,
    wait_for_phase,
    wait_until_no_pod_runs,
)
from tests.support.webhook import sidecar_injector

pytestmark = pytest.mark.timeout(180)


def warnings(kubectl: Any, name: str) -> dict[str, str]:
    """The LoadTest's Warning Events: reason → message (what `kubectl describe lt` shows)."""
    events = kubectl.json("get", "events", "--field-selector", f"involvedObject.name={name}")
    return {e["reason"]: e["message"] for e in events["items"] if e["type"] == "Warning"}


def test_finding_1_names_and_run_ids_children_cannot_carry_are_refused_by_the_crd(
    kubectl: Any, operator: Operator
) -> None:
    """A Service name is a DNS-1035 label and a label value at most 63 characters: the CRD
    refuses, at `kubectl apply`, what would make the API server refuse a child later."""
    for name in ("api.v2", "1k-users", "a" * 56):
        refused = kubectl("apply", "-f", "-", input=loadtest(name, "http://h"), check=False)
        assert refused.returncode != 0, name
        assert "metadata.name" in refused.stderr, refused.stderr
        assert "55" in refused.stderr, refused.stderr
    for run_id in ("2025-06-01T10:00:00Z", "rerun 2", "r" * 64):
        text = loadtest("web", "http://h", runId=run_id)
        refused = kubectl("apply", "-f", "-", input=text, check=False)
        assert refused.returncode != 0, run_id
        assert "spec.runId" in refused.stderr, refused.stderr
    # the longest name and a numeric runId (YAML's `runId: 2`) are accepted
    accepted = kubectl(
        "apply", "--dry-run=server", "-f", "-", input=loadtest("a" * 55, "http://h", runId=2)
    )
    assert accepted.returncode == 0


def test_finding_2_an_admission_refusal_fails_the_run_with_the_api_servers_words(
    kubectl: Any, operator: Operator, bridge_target: tuple[Target, str]
) -> None:
    """A compute quota refuses pods without limits (403 "failed quota"): not a silent retry."""
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "compute"},
        "spec": {"hard": {"limits.cpu": "4", "limits.memory": "4Gi"}},
    }
    kubectl.apply(yaml.safe_dump(quota))
    _, url = bridge_target
    kubectl.apply(loadtest("quota", url))
    status = wait_for_phase(kubectl, "quota", FINAL, operator)
    assert status["phase"] == "Failed", story(kubectl, operator)
    assert status["reason"] == "CreateFailed"
    assert "failed quota: compute" in status["message"], status["message"]
    assert "quota-manager" in status["message"]  # which child
    created = next(c for c in status["conditions"] if c["type"] == "ResourcesCreated")
    assert created["status"] == "False"
    assert "failed quota" in warnings(kubectl, "quota")["CreateFailed"]
    wait_until_no_pod_runs(kubectl, operator)


def test_finding_4_a_loadtest_recreated_at_once_runs_with_children_of_its_own(
    kubectl: Any, operator: Operator, bridge_target: tuple[Target, str]
) -> None:
    """`kubectl delete && kubectl apply`: the garbage collector removes the old children while
    the new LoadTest is being created; a 409 on one of those is not "mine"."""
    target, url = bridge_target
    kubectl.apply(loadtest("again", url, runTime="30s"))
    wait_for_phase(kubectl, "again", ("Running", *FINAL), operator)
    old_uid = kubectl.json("get", "loadtest", "again")["metadata"]["uid"]
    kubectl("delete", "loadtest", "again", "--wait=true", timeout=60)
    kubectl.apply(loadtest("again", url, runTime="2s"))
    status = wait_for_phase(kubectl, "again", FINAL, operator)
    assert status["phase"] == "Succeeded", f"{status}\n{story(kubectl, operator)}"
    uid = kubectl.json("get", "loadtest", "again")["metadata"]["uid"]
    assert uid != old_uid
    for kind in ("pods", "services", "secrets", "configmaps", "serviceaccounts"):
        for item in kubectl.json("get", kind, "-l", "gaggle.dev/loadtest=again")["items"]:
            owners = [o["uid"] for o in item["metadata"].get("ownerReferences", [])]
            assert owners == [uid], (kind, item["metadata"]["name"], owners)
    assert status["summary"]["requests"] > 0
    target.reset()


def test_finding_9_a_deleted_manager_pod_fails_the_run_as_manager_lost(
    kubectl: Any, operator: Operator, bridge_target: tuple[Target, str]
) -> None:
    _, url = bridge_target
    kubectl.apply(loadtest("lost", url, runTime="60s"))
    wait_for_phase(kubectl, "lost", ("Running", *FINAL), operator)
    kubectl("delete", "pod", "lost-manager", "--grace-period=1", "--wait=true", timeout=60)
    status = wait_for_phase(kubectl, "lost", FINAL, operator)
    assert status["phase"] == "Failed", story(kubectl, operator)
    assert status["reason"] == "ManagerLost", status
    assert "lost-manager" in status["message"]
    assert "ManagerLost" in warnings(kubectl, "lost")
    wait_until_no_pod_runs(kubectl, operator)


HELPED = """
from gaggle import TaskSet, task, constant
from helpers.paths import LANDING

class Helped(TaskSet):
    wait_time = constant(0.05)

    @task
    async def index(self) -> None:
        await self.get(LANDING)
"""


def test_finding_8_helper_modules_import_from_the_kubelets_configmap_layout(
    kubectl: Any, operator: Operator, bridge_target: tuple[Target, str]
) -> None:
    """A ConfigMap volume's files are links into ``..data`` → a timestamped folder: the script's
    folder as mounted, not the link's target, is where ``helpers/`` sits."""
    target, url = bridge_target
    kubectl("create", "configmap", "script", "--from-literal", f"loadtest.py={HELPED}")
    kubectl(
        "create",
        "configmap",
        "helpers",
        "--from-literal",
        "__init__.py=",
        "--from-literal",
        "paths.py=LANDING = '/landing'\n",
    )
    body = yaml.safe_load(loadtest("helped", url))
    body["spec"]["script"] = {"configMap": {"name": "script", "key": "loadtest.py"}}
    body["spec"]["extraConfigMaps"] = [{"name": "helpers"}]  # at /gaggle/script/helpers
    kubectl.apply(yaml.safe_dump(body))
    status = wait_for_phase(kubectl, "helped", FINAL, operator)
    assert status["phase"] == "Succeeded", f"{status}\n{story(kubectl, operator)}"
    assert status["summary"]["requests"] == target.counts()["GET /landing 200"] > 0


def test_finding_5_and_21_a_finished_loadtest_holds_no_finalizer_nor_a_timer(
    kubectl: Any, operator: Operator, bridge_target: tuple[Target, str]
) -> None:
    """kopf holds a finalizer while a timer watches a LoadTest; a finished one needs no
    watching, so `kubectl delete` (or deleting its namespace) must not wait for an operator."""
    _, url = bridge_target
    kubectl.apply(loadtest("done", url, cleanup={"policy": "Never"}))
    assert wait_for_phase(kubectl, "done", FINAL, operator)["phase"] == "Succeeded"
    deadline = time.monotonic() + 30
    while kubectl.json("get", "loadtest", "done")["metadata"].get("finalizers"):
        assert time.monotonic() < deadline, story(kubectl, operator)
        time.sleep(0.5)
    # finding 21: nor does a timer look at it every tick any more (the operator's TICK is 1 s)
    timer = f"[{kubectl.namespace}/done] Timer 'watch'"
    looked = operator.read().count(timer)
    time.sleep(3)
    assert operator.read().count(timer) == looked, "a finished LoadTest is still looked at"
    operator.stop()
    kubectl("delete", "loadtest", "done", "--wait=true", timeout=30)
    assert kubectl("get", "loadtest", "done", check=False).returncode != 0


def test_finding_16_an_inline_script_too_big_for_the_annotations_is_refused_at_apply(
    kubectl: Any, operator: Operator
) -> None:
    """kopf keeps the spec in an annotation, and client-side apply a second copy: all
    annotations may hold 256 KiB, so an inline script over 64 KiB is refused up front."""
    script = "# filler\n" * 8000  # 72 KB
    refused = kubectl(
        "apply",
        "-f",
        "-",
        input=loadtest("big", "http://h", script={"inline": script}),
        check=False,
    )
    assert refused.returncode != 0
    assert "spec.script.inline" in refused.stderr, refused.stderr
    assert "configMap" in refused.stderr


UNSAFE = {
    "workers.template.spec.hostNetwork": {"workers": {"template": {"spec": {"hostNetwork": True}}}},
    "manager.template.spec.serviceAccountName": {
        "manager": {"template": {"spec": {"serviceAccountName": "deployer"}}}
    },
    "workers.template.spec.volumes": {
        "workers": {
            "template": {"spec": {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}}
        }
    },
    "workers.template.spec.containers[gaggle].securityContext": {
        "workers": {
            "template": {
                "spec": {
                    "containers": [{"name": "gaggle", "securityContext": {"privileged": True}}]
                }
            }
        }
    },
    "workers.template.spec.containers[miner]": {
        "workers": {"template": {"spec": {"containers": [{"name": "miner", "image": "x"}]}}}
    },
}


def test_finding_10_a_pod_template_may_not_make_privileged_pods_or_borrow_accounts(
    kubectl: Any, operator: Operator
) -> None:
    """Who may create LoadTests need not be allowed to create pods: the templates are an
    allow-list (scheduling, resources, env, labels...), and anything else is refused by name."""
    for i, (field, spec) in enumerate(UNSAFE.items()):
        name = f"unsafe-{i}"
        body = yaml.safe_load(loadtest(name, "http://127.0.0.1:9"))
        body["spec"] = {
            **body["spec"],
            **spec,
            "workers": {"replicas": 1, **spec.get("workers", {})},
        }
        kubectl.apply(yaml.safe_dump(body))
        status = wait_for_phase(kubectl, name, FINAL, operator)
        assert (status["phase"], status.get("reason")) == ("Failed", "InvalidSpec"), status
        assert field in status["message"], (field, status["message"])
        assert "may set only" in status["message"]
    assert kubectl.json("get", "pods")["items"] == []  # nothing was created


def test_finding_23_an_operator_wide_pull_secret_reaches_every_pod_of_every_loadtest(
    cluster: Cluster,
    namespace: str,
    kubectl: Any,
    tmp_path: Path,
    bridge_target: tuple[Target, str],
) -> None:
    """A private registry: the chart's defaults.imagePullSecrets (GAGGLE_IMAGE_PULL_SECRETS) are
    the manager's and workers' pull secrets, beside any a LoadTest's template names."""
    _, url = bridge_target
    env = {"GAGGLE_IMAGE_PULL_SECRETS": "regcred,mirror"}
    with operating(cluster, namespace, kubectl, tmp_path / "operator.log", env) as running:
        extra = {"spec": {"imagePullSecrets": [{"name": "team"}]}}
        kubectl.apply(loadtest("pulled", url, workers={"replicas": 1, "template": extra}))
        wait_for_phase(kubectl, "pulled", ("Running", *FINAL), running)
        secrets = {
            pod["metadata"]["name"]: [s["name"] for s in pod["spec"].get("imagePullSecrets", [])]
            for pod in kubectl.json("get", "pods")["items"]
        }
    assert secrets == {
        "pulled-manager": ["regcred", "mirror"],
        "pulled-worker-0": ["regcred", "mirror", "team"],
    }


def test_finding_17_a_restarted_operator_keeps_the_runs_start_time(
    kubectl: Any, operator: Operator, bridge_target: tuple[Target, str]
) -> None:
    """readyTimeoutSeconds and activeDeadlineSeconds count from startTime: a restart of the
    operator while workers are awaited must not move it (and so extend them)."""
    _, url = bridge_target
    idle = {
        "spec": {
            "containers": [
                {
                    "name": "gaggle",
                    "command": ["python"],
                    "args": ["-c", "import time; time.sleep(120)"],
                }
            ]
        }
    }
    kubectl.apply(
        loadtest(
            "waiting",
            url,
            workers={"replicas": 1, "template": idle},
            startPolicy={"readyTimeoutSeconds": 600},
        )
    )
    status = wait_for_phase(kubectl, "waiting", ("WaitingForWorkers",), operator)
    started = status["startTime"]
    time.sleep(1.1)  # startTime has a resolution of seconds
    operator.restart()
    deadline = time.monotonic() + 30
    while "Resuming is processed" not in operator.read():
        assert time.monotonic() < deadline, story(kubectl, operator)
        time.sleep(0.2)
    status = kubectl.json("get", "loadtest", "waiting")["status"]
    assert status["phase"] == "WaitingForWorkers"
    assert status["startTime"] == started


def schema_fields(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(dotted path, schema) of every field under ``node``; an array's items as ``path[]``."""
    for name, child in (node.get("properties") or {}).items():
        where = f"{path}.{name}" if path else name
        yield where, child
        yield from schema_fields(child, where)
    if "items" in node:
        yield f"{path}[]", node["items"]
        yield from schema_fields(node["items"], path)


def test_kubectl_explain_describes_every_field_of_the_spec(
    kubectl: Any, operator: Operator
) -> None:
    """`kubectl explain loadtest.spec.<field>` answers for every field, from the CRD's own
    descriptions (the real API server publishes them in its OpenAPI)."""
    crd = yaml.safe_load(CRD.read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    fields = dict(schema_fields(schema["properties"]["spec"], "spec"))
    assert [path for path, node in fields.items() if not node.get("description")] == []
    deadline = time.monotonic() + 30  # a new CRD reaches the API server's OpenAPI in seconds
    while kubectl("explain", "loadtests.spec", check=False).returncode != 0:
        assert time.monotonic() < deadline, "the CRD never reached kubectl explain"
        time.sleep(0.5)
    for path, node in fields.items():
        if path.endswith("[]"):
            continue  # explained with its array
        explained = kubectl("explain", f"loadtests.{path}").stdout
        first_words = " ".join(node["description"].split()[:4])
        assert first_words in " ".join(explained.split()), (path, explained)


@pytest.mark.parametrize("honour_opt_out", [True, False], ids=["opted-out", "injected"])
def test_finding_3_a_mesh_sidecar_neither_hangs_nor_decides_the_run(
    cluster: Cluster,
    namespace: str,
    kubectl: Any,
    operator: Operator,
    bridge_target: tuple[Target, str],
    honour_opt_out: bool,
) -> None:
    """A mutating webhook adds a proxy container, as a mesh's does. The pods opt out of
    injection by default (Istio's and Linkerd's annotations), and where a webhook injects
    anyway, the run ends when the gaggle container does — not when the pod's phase says."""
    target, url = bridge_target
    with sidecar_injector(cluster, namespace, honour_opt_out) as injected:
        kubectl.apply(loadtest("meshed", url))
        status = wait_for_phase(kubectl, "meshed", FINAL, operator)
    assert status["phase"] == "Succeeded", f"{status}\n{story(kubectl, operator)}"
    assert status["summary"]["requests"] == sum(target.counts().values()) > 0
    pods = {p["metadata"]["name"]: p for p in kubectl.json("get", "pods")["items"]}
    for pod in pods.values():
        annotations = pod["metadata"]["annotations"]
        assert annotations["sidecar.istio.io/inject"] == "false"
        assert annotations["linkerd.io/inject"] == "disabled"
    if honour_opt_out:
        assert injected == []
    else:
        assert sorted(injected) == sorted(pods)  # every pod got the proxy, and still it ended


def test_finding_7_workers_join_a_manager_that_starts_75_s_after_them(
    cluster: Cluster, kubectl: Any, operator: Operator, bridge_target: tuple[Target, str]
) -> None:
    """The manager pod waits 75 s for a node (an image pull, an autoscaler), its workers don't:
    they meet refused connections on the Service's ClusterIP, which gRPC retries within 3 s. A
    headless Service has no DNS record until then, and gRPC backs re-resolution off (attempts at
    about 43, 70, 113 s): past this run's 100 s ready timeout. At 60 s both ways join in time
    (tried: a headless Service joined at about 70 s)."""
    target, url = bridge_target
    label = f"gaggle.dev/late-{kubectl.namespace}"
    late = {"template": {"spec": {"nodeSelector": {label: "yes"}}}}
    kubectl.apply(loadtest("late", url, manager=late, startPolicy={"readyTimeoutSeconds": 100}))
    deadline = time.monotonic() + 60
    while (
        sum(
            p["status"].get("phase") == "Running"
            and p["metadata"]["name"].startswith("late-worker")
            for p in kubectl.json("get", "pods")["items"]
        )
        < 2
    ):
        assert time.monotonic() < deadline, story(kubectl, operator)
        time.sleep(0.5)
    time.sleep(75)  # the workers try the manager all this while
    assert kubectl.json("get", "pod", "late-manager")["status"]["phase"] == "Pending"
    cluster.kubectl("label", "node", NODE, f"{label}=yes")
    try:
        status = wait_for_phase(kubectl, "late", FINAL, operator)
    finally:
        cluster.kubectl("label", "node", NODE, f"{label}-")
    assert status["phase"] == "Succeeded", f"{status}\n{story(kubectl, operator)}"
    served = target.counts()
    assert status["summary"]["requests"] == served["GET / 200"] + served["GET /landing 200"]


def lease_holder(kubectl: Any) -> str:
    found = kubectl("get", "lease", "gaggle-operator", "-o", "json", check=False)
    if found.returncode != 0:
        return ""
    spec = yaml.safe_load(found.stdout).get("spec") or {}
    return str(spec.get("holderIdentity") or "")


def wait_for_holder(kubectl: Any, identity: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while lease_holder(kubectl) != identity:
        assert time.monotonic() < deadline, f"Lease held by {lease_holder(kubectl)!r}"
        time.sleep(0.3)


def test_finding_25_of_two_operators_only_the_lease_holder_acts_and_the_other_takes_over(
    cluster: Cluster,
    namespace: str,
    kubectl: Any,
    tmp_path: Path,
    bridge_target: tuple[Target, str],
) -> None:
    """Two operators at once (an evicted pod and its replacement): one holds the Lease and acts,
    the other stands by; killed without a word, the holder is replaced once its (here 4 s) Lease
    runs out; stopped cleanly, it hands the Lease back. (Before: two `kopf run --standalone`
    both handled every LoadTest, each creating the children and posting the Events.)"""
    _, url = bridge_target
    kubectl("apply", "-f", str(CRD))
    kubectl("wait", "--for", "condition=established", "crd/loadtests.gaggle.dev", "--timeout=20s")
    first, second = (Operator(cluster, namespace, tmp_path / n, identity=n, lease_seconds=4)
                     for n in "ab")  # fmt: skip
    first.start()
    try:
        wait_for_holder(kubectl, "a", timeout=30)
        second.start()
        deadline = time.monotonic() + 30
        while "standing by: Lease" not in second.read():
            assert time.monotonic() < deadline, second.read()
            time.sleep(0.2)
        kubectl.apply(loadtest("one", url, runTime="1s"))
        status = wait_for_phase(kubectl, "one", FINAL, first)
        assert status["phase"] == "Succeeded", story(kubectl, first)
        assert f"[{namespace}/one]" in first.read()
        assert f"[{namespace}/one]" not in second.read(), second.read()

        first.stop(kill=True)  # no release: the standby waits the Lease out
        wait_for_holder(kubectl, "b", timeout=30)
        kubectl.apply(loadtest("two", url, runTime="1s"))
        status = wait_for_phase(kubectl, "two", FINAL, second)
        assert status["phase"] == "Succeeded", story(kubectl, second)
        assert f"[{namespace}/two]" in second.read()
    finally:
        if second.process is None:
            second.start()
        kubectl("delete", "loadtests", "--all", "--timeout=30s", check=False)
        first.stop()
        second.stop()
    assert lease_holder(kubectl) == "", "a clean stop hands the Lease back"


def test_finding_22_the_manager_answers_on_ipv6_too(
    kubectl: Any, operator: Operator, bridge_target: tuple[Target, str]
) -> None:
    """On an IPv6-only cluster a pod's address is v6: the manager must listen on every address
    of both families (it bound 0.0.0.0, IPv4 only, and refused this connection). The test
    cluster is single-stack IPv4, so the v6 connection is made inside the manager's own
    network namespace, to ::1 (kubectl exec), and the v4 one from the host to its pod IP."""
    _, url = bridge_target
    kubectl.apply(loadtest("six", url, runTime="30s"))
    wait_for_phase(kubectl, "six", ("Running", *FINAL), operator)
    pod_ip = kubectl.json("get", "pod", "six-manager")["status"]["podIP"]
    probe = ("import socket, sys, urllib.request\n"
             "socket.create_connection(('::1', int(sys.argv[1])), timeout=5).close()\n"
             "page = urllib.request.urlopen(f'http://[::1]:{sys.argv[2]}/metrics', timeout=5)\n"
             "print(b'gaggle_requests_total' in page.read())\n")  # fmt: skip
    inside = kubectl("exec", "six-manager", "--", "python", "-c", probe,
                     str(GRPC_PORT), str(METRICS_PORT))  # fmt: skip
    assert inside.stdout.strip() == "True", inside.stdout + inside.stderr
    with urllib.request.urlopen(f"http://{pod_ip}:{METRICS_PORT}/metrics", timeout=5) as page:
        assert page.status == 200  # and IPv4 still
    kubectl("delete", "loadtest", "six", "--wait=true", timeout=60)


def test_finding_13_the_chart_installed_cluster_wide_runs_a_loadtest_in_any_namespace(
    cluster: Cluster, kubectl: Any, bridge_target: tuple[Target, str]
) -> None:
    """The Deployment as shipped, in its `--all-namespaces` mode (the e2e tests install it
    watching namespaces): a pod on the real node as uid 10001, in-cluster credentials, RBAC from the
    ClusterRole alone; a LoadTest in a namespace nobody named runs to an exact summary."""
    target, url = bridge_target
    kubectl("apply", "-f", str(CRD))
    kubectl("wait", "--for", "condition=established", "crd/loadtests.gaggle.dev", "--timeout=20s")
    others = kubectl.json("get", "loadtests", "--all-namespaces")["items"]
    assert not others, "another test's LoadTests would be this operator's too"
    with installing(cluster, [], kubectl) as release:
        container = release.kubectl.json("get", "deployment", release.name)["spec"]["template"]
        assert "--all-namespaces" in container["spec"]["containers"][0]["args"]
        kubectl.apply(loadtest("anywhere", url))
        status = wait_for_phase(kubectl, "anywhere", FINAL, release)
        assert status["phase"] == "Succeeded", story(kubectl, release)
        served = target.counts()
        assert status["summary"]["requests"] == served["GET / 200"] + served["GET /landing 200"]
        kubectl("delete", "loadtest", "anywhere", "--wait=true", timeout=60)


DENY_INGRESS = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny-ingress}
spec: {podSelector: {}, policyTypes: [Ingress]}
"""


def test_finding_14_under_a_default_deny_policy_a_loadtest_runs_with_its_own_network_policy(
    kubectl: Any, operator: Operator, bridge_target: tuple[Target, str]
) -> None:
    """A namespace that denies all ingress (the node's policy agent enforces it): the workers
    cannot reach the manager and the run fails WorkersNotReady; with `networkPolicy.enabled`
    the operator's NetworkPolicy admits the LoadTest's own traffic, and the run is exact."""
    target, url = bridge_target
    kubectl.apply(DENY_INGRESS)
    kubectl.apply(loadtest("fenced", url, startPolicy={"readyTimeoutSeconds": 8}))
    status = wait_for_phase(kubectl, "fenced", FINAL, operator)
    assert (status["phase"], status["reason"]) == ("Failed", "WorkersNotReady"), status
    assert "0/2" in status["message"], status["message"]
    wait_until_no_pod_runs(kubectl, operator)
    kubectl.apply(loadtest("let-in", url, networkPolicy={"enabled": True}))
    status = wait_for_phase(kubectl, "let-in", FINAL, operator)
    assert status["phase"] == "Succeeded", story(kubectl, operator)
    served = target.counts()
    assert status["summary"]["requests"] == served["GET / 200"] + served["GET /landing 200"] > 0
    made = kubectl.json("get", "networkpolicy", "let-in-network")
    assert made["metadata"]["ownerReferences"][0]["name"] == "let-in"


def test_twenty_workers_start_together_and_the_summary_is_exact(
    kubectl: Any, operator: Operator, bridge_target: tuple[Target, str]
) -> None:
    """Beyond the review: 20 worker pods on the real node. The manager starts the load only when all
    have joined (each runs its share of 40 users), and the merged summary is what the target
    served."""
    target, url = bridge_target
    spec = {"users": 40, "hatchRate": 400, "runTime": "3s", "workers": {"replicas": 20}}
    kubectl.apply(loadtest("crowd", url, **spec))
    status = wait_for_phase(kubectl, "crowd", FINAL, operator)
    assert status["phase"] == "Succeeded", story(kubectl, operator)
    assert (status["workers"]["desired"], status["workers"]["lost"]) == (20, 0), status
    ready = next(c for c in status["conditions"] if c["type"] == "WorkersReady")
    assert (ready["status"], ready["message"]) == ("True", "20 worker(s) connected"), ready
    served = target.counts()
    assert status["summary"]["requests"] == served["GET / 200"] + served["GET /landing 200"] > 0
    # each worker exits after the manager's end; the kubelet reports 20 pods' ends in its own time
    deadline = time.monotonic() + 90
    while True:
        selector = "gaggle.dev/loadtest=crowd,gaggle.dev/role=worker"
        phases = [
            pod["status"]["phase"] for pod in kubectl.json("get", "pods", "-l", selector)["items"]
        ]
        if phases == ["Succeeded"] * 20 or "Failed" in phases:
            break
        assert time.monotonic() < deadline, phases
        time.sleep(0.5)
    assert phases == ["Succeeded"] * 20, phases
