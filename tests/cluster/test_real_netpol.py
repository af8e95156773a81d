"""NetworkPolicy on the real node, enforced by kube-router's firewall controller
(tests/cluster/realnode/policy.py) on real pods: what a policy isolates is refused, exactly the
peers its rules name get in (podSelector, namespaceSelector, ipBlock, port), egress rules limit
where a pod connects, replies and the kubelet's probes pass; stopping the controller leaves none
of its chains or ipsets, and a killed test's controller is swept by the next.

kube-router REJECTs what no policy admits (the client sees "connection refused" at once), and
applies a change with the sync that follows it: each check waits until the outcome it expects,
bounded, after showing first (where it matters) that the refused side is refused — so a rule
that is never enforced fails the test. The module has a cluster of its own (``real_cluster``):
two tests stop its controller (``firewall``, the one ``Cluster`` starts) and start it again."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import binaries
from tests.cluster.cluster import Cluster
from tests.cluster.realnode import NODE, netns, policy
from tests.cluster.realnode.policy import PolicyController, PolicyError
from tests.conftest import ROOT

pytestmark = pytest.mark.timeout(300)

WAIT = 90  # seconds for a pod to run or a rule to take effect, on a loaded 2-core machine


def controller(cluster: Cluster, workdir: Path, kubeconfig: Path | None = None) -> PolicyController:
    assert cluster.control is not None
    return PolicyController(
        kubeconfig or policy.grant(cluster.control),
        NODE,
        cluster.net.service_range,
        workdir,
        netns=netns.name(cluster.net.cid),
    )


@pytest.fixture(scope="module")
def firewall(real_cluster: Cluster) -> PolicyController:
    """The cluster's own controller (a real cluster enforces policies from its start)."""
    assert real_cluster.real is not None
    assert real_cluster.real.policy is not None
    return real_cluster.real.policy


@pytest.fixture
def namespace(real_cluster: Cluster) -> Iterator[str]:
    """A fresh namespace of the real cluster (not the session cluster's ``namespace``)."""
    name = f"np-{uuid.uuid4().hex[:8]}"
    real_cluster.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        real_cluster.kubectl("delete", "namespace", name, "--wait=false")


def toolbox(cluster: Cluster) -> str:
    assert cluster.real is not None
    assert cluster.real.toolbox is not None
    return cluster.real.toolbox.name


def kubectl(cluster: Cluster, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    command = [str(binaries.BIN / "kubectl"), "--kubeconfig", str(cluster.kubeconfig), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def apply(cluster: Cluster, namespace: str, *objects: dict[str, Any]) -> None:
    manifest = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)})
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest)


def pod(
    cluster: Cluster, name: str, labels: dict[str, str], command: str, **container: Any
) -> dict[str, Any]:
    """A toolbox pod running ``command`` as the image's user, read-only root, /tmp its own."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "securityContext": {"runAsUser": 10001, "runAsGroup": 10001},
            "volumes": [{"name": "tmp", "emptyDir": {}}],
            "containers": [{
                "name": "main", "image": toolbox(cluster), "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c", command],
                "securityContext": {"readOnlyRootFilesystem": True},
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                **container,
            }],
        },
    }  # fmt: skip


def server(cluster: Cluster, name: str, labels: dict[str, str], **container: Any) -> dict[str, Any]:
    """busybox httpd on 8080 (the named port ``http``) and 9090, serving /tmp."""
    command = (
        "echo hello >/tmp/index.html && httpd -p 9090 -h /tmp && exec httpd -f -p 8080 -h /tmp"
    )
    ports = [{"name": "http", "containerPort": 8080}, {"name": "other", "containerPort": 9090}]
    return pod(cluster, name, labels, command, ports=ports, **container)


def client(cluster: Cluster, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return pod(cluster, name, labels, "exec sleep 3600")


def policy_object(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name}, "spec": spec}  # fmt: skip


def running(cluster: Cluster, namespace: str, *names: str) -> dict[str, str]:
    """Wait until each pod runs; their IPs."""
    ips: dict[str, str] = {}
    deadline = time.monotonic() + WAIT
    for name in names:
        while True:
            got = json.loads(cluster.kubectl("get", "pod", name, "-n", namespace, "-o", "json"))
            status = got.get("status", {})
            if status.get("phase") == "Running" and status.get("podIP"):
                ips[name] = status["podIP"]
                break
            assert time.monotonic() < deadline, f"{name} did not run: {json.dumps(status)}"
            time.sleep(0.2)
    return ips


def reach(cluster: Cluster, namespace: str, source: str, address: str, port: int) -> str:
    """One HTTP GET from pod ``source``: "connected", "refused" or what else happened."""
    get = ["timeout", "5", "wget", "-q", "-O", "-", f"http://{address}:{port}/"]
    done = kubectl(cluster, "exec", "-n", namespace, source, "--", *get)
    if done.returncode == 0:
        return "connected"
    if "Connection refused" in done.stderr:
        return "refused"
    return f"rc {done.returncode}: {done.stderr.strip()}"


def until(
    cluster: Cluster, firewall: PolicyController, namespace: str, source: str,
    address: str, port: int, outcome: str,
) -> None:  # fmt: skip
    """Wait until ``source``'s connection to address:port has ``outcome`` (bounded)."""
    deadline = time.monotonic() + WAIT
    while (got := reach(cluster, namespace, source, address, port)) != outcome:
        assert time.monotonic() < deadline, (
            f"{source} -> {address}:{port}: {got}, not {outcome}\n"
            f"kube-router's state: {firewall.host_state()}\n{firewall.tail()}"
        )
        time.sleep(0.2)


def test_a_default_deny_isolates_a_pod_and_the_kubelets_probes_still_pass(
    real_cluster: Cluster, firewall: PolicyController, namespace: str
) -> None:
    probe = {"httpGet": {"path": "/ready.html", "port": 8080}, "periodSeconds": 1}
    web = server(real_cluster, "web", {"app": "web"}, readinessProbe=probe)
    apply(real_cluster, namespace, web, client(real_cluster, "caller", {}))
    ip = running(real_cluster, namespace, "web", "caller")["web"]
    until(
        real_cluster, firewall, namespace, "caller", ip, 8080, "connected"
    )  # open before the policy
    apply(real_cluster, namespace, policy_object("deny", podSelector={}, policyTypes=["Ingress"]))
    until(real_cluster, firewall, namespace, "caller", ip, 8080, "refused")
    with pytest.raises(urllib.error.URLError) as refused:  # the host is not the node
        urllib.request.urlopen(f"http://{ip}:8080/", timeout=5)
    assert isinstance(refused.value.reason, ConnectionRefusedError)
    # Only now may the probe succeed: the kubelet's own traffic passes the isolated pod's rules.
    assert (
        kubectl(
            real_cluster,
            "get",
            "pod",
            "web",
            "-n",
            namespace,
            "-o",
            "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
        ).stdout
        == "False"
    )
    real_cluster.kubectl("exec", "-n", namespace, "web", "--", "touch", "/tmp/ready.html")
    waited = kubectl(real_cluster, "wait", "-n", namespace, "--for=condition=Ready", "pod/web",
                     f"--timeout={WAIT}s", timeout=WAIT + 10)  # fmt: skip
    assert waited.returncode == 0, waited.stderr
    real_cluster.kubectl("delete", "networkpolicy", "deny", "-n", namespace)
    until(real_cluster, firewall, namespace, "caller", ip, 8080, "connected")
    assert firewall.errors() == []


def test_a_pod_selector_and_a_port_admit_exactly_the_allowed_peer(
    real_cluster: Cluster, firewall: PolicyController, namespace: str
) -> None:
    apply(
        real_cluster, namespace,
        policy_object("web", podSelector={"matchLabels": {"app": "web"}}, ingress=[{
            "from": [{"podSelector": {"matchLabels": {"role": "friend"}}}],
            "ports": [{"port": "http"}],  # the named port: 8080, not 9090
        }]),
        server(real_cluster, "web", {"app": "web"}),
        client(real_cluster, "friend", {"role": "friend"}),
        client(real_cluster, "stranger", {"role": "stranger"}),
    )  # fmt: skip
    ip = running(real_cluster, namespace, "web", "friend", "stranger")["web"]
    until(real_cluster, firewall, namespace, "stranger", ip, 8080, "refused")
    until(real_cluster, firewall, namespace, "friend", ip, 8080, "connected")
    assert reach(real_cluster, namespace, "friend", ip, 9090) == "refused"
    assert reach(real_cluster, namespace, "stranger", ip, 9090) == "refused"
    assert reach(real_cluster, namespace, "stranger", ip, 8080) == "refused"


def test_a_namespace_selector_admits_the_pods_of_the_labelled_namespaces(
    real_cluster: Cluster, firewall: PolicyController, namespace: str
) -> None:
    blue, other = f"{namespace}-blue", f"{namespace}-other"
    for name in (blue, other):
        real_cluster.kubectl("create", "namespace", name)
    try:
        real_cluster.kubectl("label", "namespace", blue, "team=blue")
        blues = {"namespaceSelector": {"matchLabels": {"team": "blue"}}}
        apply(
            real_cluster,
            namespace,
            server(real_cluster, "web", {"app": "web"}),
            client(real_cluster, "local", {}),
            policy_object("blue-only", podSelector={}, ingress=[{"from": [blues]}]),
        )
        apply(real_cluster, blue, client(real_cluster, "caller", {}))
        apply(real_cluster, other, client(real_cluster, "caller", {}))
        ip = running(real_cluster, namespace, "web", "local")["web"]
        running(real_cluster, blue, "caller")
        running(real_cluster, other, "caller")
        until(real_cluster, firewall, other, "caller", ip, 8080, "refused")
        until(real_cluster, firewall, blue, "caller", ip, 8080, "connected")
        assert (
            reach(real_cluster, namespace, "local", ip, 8080) == "refused"
        )  # its own namespace too
        real_cluster.kubectl("label", "namespace", other, "team=blue")  # a label change lets it in
        until(real_cluster, firewall, other, "caller", ip, 8080, "connected")
    finally:
        for name in (blue, other):
            real_cluster.kubectl("delete", "namespace", name, "--wait=false")


def test_an_ip_block_admits_its_range_less_its_exceptions(
    real_cluster: Cluster, firewall: PolicyController, namespace: str
) -> None:
    apply(real_cluster, namespace, server(real_cluster, "web", {"app": "web"}),
          client(real_cluster, "inside", {}), client(real_cluster, "excepted", {}))  # fmt: skip
    ips = running(real_cluster, namespace, "web", "inside", "excepted")
    pods = ips["web"].rsplit(".", 1)[0] + ".0/24"  # the node's pod range
    apply(real_cluster, namespace, policy_object(
        "range", podSelector={"matchLabels": {"app": "web"}},
        ingress=[{"from": [{"ipBlock": {"cidr": pods, "except": [f"{ips['excepted']}/32"]}}]}],
    ))  # fmt: skip
    until(real_cluster, firewall, namespace, "excepted", ips["web"], 8080, "refused")
    until(real_cluster, firewall, namespace, "inside", ips["web"], 8080, "connected")


class Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"host\n")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def host_server(real_cluster: Cluster) -> Iterator[int]:
    """An HTTP server of the test's on the host's bridge address (what pods reach as the host)."""
    httpd = ThreadingHTTPServer((real_cluster.host_ip, 0), Hello)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_an_egress_policy_limits_where_a_pod_connects_and_its_replies_return(
    real_cluster: Cluster, firewall: PolicyController, namespace: str, host_server: int
) -> None:
    apply(
        real_cluster,
        namespace,
        server(real_cluster, "web", {"app": "web"}),
        server(real_cluster, "elsewhere", {"app": "other"}),
        client(real_cluster, "muted", {"role": "muted"}),
    )
    ips = running(real_cluster, namespace, "web", "elsewhere", "muted")
    until(
        real_cluster, firewall, namespace, "muted", real_cluster.host_ip, host_server, "connected"
    )
    apply(real_cluster, namespace, policy_object(
        "muted", podSelector={"matchLabels": {"role": "muted"}},
        policyTypes=["Ingress", "Egress"],  # no ingress rule: nothing may connect to it
        egress=[{"to": [{"podSelector": {"matchLabels": {"app": "web"}}}],
                 "ports": [{"protocol": "TCP", "port": 8080}]}],
    ))  # fmt: skip
    until(real_cluster, firewall, namespace, "muted", ips["elsewhere"], 8080, "refused")
    until(real_cluster, firewall, namespace, "muted", ips["web"], 8080, "connected")
    # the reply came back through its closed ingress: the page itself
    get = ["timeout", "5", "wget", "-q", "-O", "-", f"http://{ips['web']}:8080/"]
    page = real_cluster.kubectl("exec", "-n", namespace, "muted", "--", *get)
    assert page == "hello\n"
    assert reach(real_cluster, namespace, "muted", ips["web"], 9090) == "refused"
    assert (
        reach(real_cluster, namespace, "muted", real_cluster.host_ip, host_server) == "refused"
    )  # the host too


def test_stopping_the_controller_removes_every_chain_and_ipset_it_made(
    real_cluster: Cluster, firewall: PolicyController, namespace: str
) -> None:
    apply(
        real_cluster,
        namespace,
        server(real_cluster, "web", {"app": "web"}),
        client(real_cluster, "friend", {"a": "b"}),
        policy_object(
            "web",
            podSelector={"matchLabels": {"app": "web"}},
            ingress=[
                {
                    "from": [
                        {"podSelector": {"matchLabels": {"a": "b"}}},
                        {"ipBlock": {"cidr": "10.0.0.0/8"}},
                    ]
                }
            ],
        ),
    )
    running(real_cluster, namespace, "web", "friend")
    kinds = ("chain KUBE-ROUTER-", "chain KUBE-POD-FW-", "chain KUBE-NWPLCY-", "ipset KUBE-SRC-",
             "ipset KUBE-DST-")  # fmt: skip
    deadline = time.monotonic() + WAIT
    while not all(any(kind in item for item in firewall.host_state()) for kind in kinds):
        assert time.monotonic() < deadline, firewall.host_state()
        time.sleep(0.2)
    firewall.stop()
    try:
        assert firewall.host_state() == []
        assert not firewall.alive()
        # the kubelet's chains in the same table are left alone
        assert "KUBE-KUBELET-CANARY" in filter_table(real_cluster)
        assert "KUBE-ROUTER" not in filter_table(real_cluster)
        firewall.stop()  # again: nothing left to do
    finally:
        firewall.start()  # for the tests after this one


def filter_table(cluster: Cluster) -> str:
    ns = netns.path(cluster.net.cid)
    return subprocess.run(["nsenter", f"--net={ns}", "iptables-save", "-t", "filter"],
                          capture_output=True, text=True, check=True).stdout  # fmt: skip


CHILD = """
import sys, time
from pathlib import Path
from tests.cluster.realnode.policy import PolicyController
kubeconfig, node, services, workdir, ns = sys.argv[1:]
started = PolicyController(Path(kubeconfig), node, services, Path(workdir), netns=ns).start()
assert started.process is not None
print(started.process.pid, flush=True)
time.sleep(600)
"""


def test_one_controller_per_node_and_a_killed_tests_controller_is_swept(
    real_cluster: Cluster, firewall: PolicyController, tmp_path: Path
) -> None:
    second = controller(real_cluster, tmp_path, firewall.kubeconfig)
    with pytest.raises(PolicyError, match=r"already runs in gn\w+ .* stop the other first"):
        second.start()
    assert firewall.alive()  # the refusal touched nothing of the running one
    firewall.stop()
    args = [str(second.kubeconfig), NODE, real_cluster.net.service_range, str(tmp_path),
            netns.name(real_cluster.net.cid)]  # fmt: skip
    owner = subprocess.Popen([sys.executable, "-c", CHILD, *args], cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT)},
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert owner.stdout is not None
        orphan = int(owner.stdout.readline())
        os.kill(owner.pid, signal.SIGKILL)  # the test process dies; its kube-router does not
        owner.wait(10)
        assert running_process(orphan)
        assert firewall.host_state() != []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(owner.pid, signal.SIGKILL)
        firewall.start()  # sweeps the dead owner's kube-router and rules, then starts its own
    assert not running_process(orphan)
    assert firewall.alive()


def running_process(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie is its new parent's to reap)."""
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
