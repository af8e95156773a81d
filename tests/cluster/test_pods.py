"""Contract tests of our node: pods the real scheduler binds to it really run as processes, as
their user, report status like a kubelet, restart by policy, stop on SIGTERM, see their volumes at
their mountPaths (laid out and updated as the kubelet does), and reach each other through
Services and cluster DNS in their own network namespaces; nothing is left behind."""

from __future__ import annotations

import http.server
import json
import secrets
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.cluster.cluster import Cluster
from tests.cluster.fixtures import Kubectl
from tests.cluster.kubelet import binding_under
from tests.cluster.pod import PodRun

pytestmark = pytest.mark.timeout(90)

AS_ROOT = {"securityContext": {"runAsUser": 0}}  # for pods that write to the test's own folder


@pytest.fixture
def core(cluster: Cluster) -> Iterator[client.CoreV1Api]:
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    try:
        yield client.CoreV1Api(api)
    finally:
        api.close()


def pod(name: str, code: str, restart: str = "Never", **spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": "gaggle:test", "command": ["python", "-c", code]}
    container.update(spec.pop("container", {}))
    body = {"restartPolicy": restart, "terminationGracePeriodSeconds": 5, "containers": [container]}
    return {"metadata": {"name": name, **spec.pop("meta", {})}, "spec": {**body, **spec}}


def wait_phase(
    core: client.CoreV1Api, ns: str, name: str, *phases: str, timeout: float = 40
) -> Any:
    deadline = time.monotonic() + timeout
    while (got := core.read_namespaced_pod(name, ns)).status.phase not in phases:
        assert time.monotonic() < deadline, f"{name} stayed {got.status.phase}: {got.status}"
        time.sleep(0.05)
    return got


def eventually(check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)
    return result


WRITER = """
import json, os, sys
out = {k: os.environ.get(k) for k in ("POD_NAME", "POD_NAMESPACE", "POD_IP", "GREETING", "CFG_a",
                                      "SECRET", "HOME", "KUBERNETES_SERVICE_HOST")}
out["cwd"] = os.getcwd()
out["python"] = sys.executable
out["ids"] = [os.getuid(), os.getgid(), sorted(os.getgroups())]
try:
    open("/written-on-root", "w")
except OSError as error:
    out["root"] = error.strerror
print(json.dumps(out), flush=True)
"""


def test_a_pod_runs_its_command_as_its_user_and_succeeds(
    cluster: Cluster, core: client.CoreV1Api, kubectl: Kubectl, namespace: str
) -> None:
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "cfg"}, "data": {"a": "1"}})
    core.create_namespaced_secret(namespace, {"metadata": {"name": "s"}, "stringData": {"k": "v"}})
    field = lambda path: {"valueFrom": {"fieldRef": {"fieldPath": path}}}  # noqa: E731
    container = {
        "workingDir": "/tmp",
        "env": [
            {"name": "POD_NAME", **field("metadata.name")},
            {"name": "POD_NAMESPACE", **field("metadata.namespace")},
            {"name": "POD_IP", **field("status.podIP")},
            {"name": "GREETING", "value": "hello $(POD_NAME)"},
            {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        ],
        "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
        "securityContext": {"readOnlyRootFilesystem": True},
    }
    context = {"runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 2000, "runAsNonRoot": True}
    core.create_namespaced_pod(
        namespace, pod("writer", WRITER, container=container, securityContext=context)
    )
    done = wait_phase(core, namespace, "writer", "Succeeded", "Failed")
    assert done.status.phase == "Succeeded", kubectl("logs", "writer", check=False).stdout
    assert done.spec.node_name == "gaggle-node"  # bound by the real scheduler
    state = done.status.container_statuses[0]
    assert state.state.terminated.exit_code == 0
    assert state.state.terminated.reason == "Completed"
    assert state.image == "gaggle:test"
    assert state.image_id
    assert done.status.pod_ip

    written = json.loads(kubectl("logs", "writer").stdout)
    assert written["POD_NAME"] == "writer"
    assert written["POD_NAMESPACE"] == namespace
    assert written["POD_IP"] == done.status.pod_ip
    assert written["GREETING"] == "hello writer"
    assert (written["CFG_a"], written["SECRET"]) == ("1", "v")
    assert written["HOME"] == "/tmp"  # the image's
    assert written["KUBERNETES_SERVICE_HOST"] == cluster.net.service_ip(1)
    assert written["cwd"] == "/tmp"
    assert written["python"].startswith(str(cluster.venv_bin.parent))
    assert written["ids"] == [10001, 10001, [2000]]
    assert written["root"] == "Read-only file system"
    lines = kubectl("get", "pods").stdout.splitlines()
    assert lines[1].split()[:3] == ["writer", "0/1", "Completed"]


def test_run_as_non_root_meets_uid_0_and_the_pod_waits_with_the_reason(
    core: client.CoreV1Api, namespace: str
) -> None:
    context = {"runAsUser": 0, "runAsNonRoot": True}
    core.create_namespaced_pod(namespace, pod("rooted", "pass", securityContext=context))

    def refused() -> Any:
        statuses = core.read_namespaced_pod("rooted", namespace).status.container_statuses
        waiting = statuses and statuses[0].state.waiting
        return waiting if waiting and waiting.reason != "ContainerCreating" else None

    state = eventually(refused)
    assert state.reason == "CreateContainerConfigError"
    assert "runAsNonRoot" in state.message


def test_exit_codes_and_restart_policies(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_pod(namespace, pod("fails", "raise SystemExit(3)"))
    failed = wait_phase(core, namespace, "fails", "Succeeded", "Failed")
    assert failed.status.phase == "Failed"
    terminated = failed.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (3, "Error")

    # fails the first time, succeeds the second: OnFailure restarts it once
    flaky = (
        "import os, sys; sys.exit(0 if os.path.exists('/scratch/marker') "
        "else (open('/scratch/marker', 'w'), 4)[1])"
    )
    scratch = {
        "volumes": [{"name": "scratch", "emptyDir": {}}],
        "container": {"volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]},
    }
    core.create_namespaced_pod(namespace, pod("flaky", flaky, "OnFailure", **scratch))
    done = wait_phase(core, namespace, "flaky", "Succeeded", "Failed")
    assert done.status.phase == "Succeeded"
    status = done.status.container_statuses[0]
    assert status.restart_count == 1
    assert status.last_state.terminated.exit_code == 4


def test_deleting_a_pod_sends_sigterm_then_sigkill(
    core: client.CoreV1Api, namespace: str, tmp_path: Path
) -> None:
    polite = f"""
import pathlib, signal, sys, time
def bye(*_):
    pathlib.Path({str(tmp_path / "bye")!r}).write_text("SIGTERM")
    sys.exit(0)
signal.signal(signal.SIGTERM, bye)
print("ready", flush=True)
time.sleep(60)
"""
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    core.create_namespaced_pod(namespace, pod("polite", polite, **AS_ROOT))
    core.create_namespaced_pod(
        namespace, pod("stubborn", stubborn, terminationGracePeriodSeconds=1)
    )
    for name in ("polite", "stubborn"):
        running = wait_phase(core, namespace, name, "Running")
        assert running.status.container_statuses[0].ready
    time.sleep(0.5)  # let polite install its handler

    def gone(name: str) -> bool:
        try:
            core.read_namespaced_pod(name, namespace)
        except ApiException as error:
            return error.status == 404
        return False

    started = time.monotonic()
    core.delete_namespaced_pod("polite", namespace)
    core.delete_namespaced_pod("stubborn", namespace)
    assert core.read_namespaced_pod("stubborn", namespace).metadata.deletion_timestamp
    eventually(lambda: gone("polite"))
    assert (tmp_path / "bye").read_text() == "SIGTERM"
    eventually(lambda: gone("stubborn"))
    assert 0.9 < time.monotonic() - started < 15  # waited for the grace period, then killed


def test_volumes_are_laid_out_as_the_kubelet_does_and_mounted_in_the_pod_only(
    core: client.CoreV1Api, kubectl: Kubectl, namespace: str
) -> None:
    mount = Path(f"/etc/gaggle-test-{secrets.token_hex(4)}")
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "files"}, "data": {"rules.py": "RULES = 1\n"}}
    )
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "creds"}, "stringData": {"token": "s3cret"}}
    )
    code = f"""
import json, os, pathlib, time
read = lambda p: pathlib.Path(p).read_text()
seen = {{"rules": read("{mount}/rules.py"), "token": read("/var/run/creds/token"),
        "link": os.readlink("{mount}/rules.py"), "data": os.readlink("{mount}/..data"),
        "sa": sorted(os.listdir("/var/run/secrets/kubernetes.io/serviceaccount"))}}
pathlib.Path("/scratch/x").write_text("x")
print(json.dumps(seen), flush=True)
deadline = time.time() + 30
while read("{mount}/rules.py") == "RULES = 1\\n" and time.time() < deadline:
    time.sleep(0.1)
print(json.dumps({{"updated": read("{mount}/rules.py")}}), flush=True)
"""
    volumes = [
        {"name": "rules", "configMap": {"name": "files"}},
        {"name": "creds", "secret": {"secretName": "creds"}},
        {"name": "scratch", "emptyDir": {}},
    ]
    mounts = [
        {"name": "rules", "mountPath": str(mount), "readOnly": True},
        {"name": "creds", "mountPath": "/var/run/creds"},
        {"name": "scratch", "mountPath": "/scratch"},
    ]
    body = pod("mounts", code, volumes=volumes, container={"volumeMounts": mounts})
    core.create_namespaced_pod(namespace, body)
    wait_phase(core, namespace, "mounts", "Running", "Succeeded", "Failed")
    first = eventually(lambda: kubectl("logs", "mounts").stdout.splitlines())
    seen = json.loads(first[0])
    assert (seen["rules"], seen["token"]) == ("RULES = 1\n", "s3cret")
    assert seen["link"] == "..data/rules.py"
    assert seen["data"].startswith("..20")  # a timestamped folder
    stamped, *rest = seen["sa"]  # the projected token volume, laid out the same way
    assert stamped.startswith("..20")
    assert rest == ["..data", "ca.crt", "namespace", "token"]
    core.patch_namespaced_config_map("files", namespace, {"data": {"rules.py": "RULES = 2\n"}})
    done = wait_phase(core, namespace, "mounts", "Succeeded", "Failed")
    log = kubectl("logs", "mounts").stdout
    assert done.status.phase == "Succeeded", log
    assert json.loads(log.splitlines()[1]) == {"updated": "RULES = 2\n"}
    assert not mount.exists()  # the mount point made for the pod is gone from the host
    assert not Path("/scratch/x").exists()


def serve_on(address: str) -> tuple[http.server.HTTPServer, list[str]]:
    """A tiny HTTP server on the host side of the bridge; it records the paths it served."""
    paths: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            paths.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"host")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer((address, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, paths


FETCH = """
import socket, sys, time, urllib.request
deadline = time.time() + 20
for url in sys.argv[1:]:
    while True:
        try:
            body = urllib.request.urlopen(url, timeout=2).read().decode()
            print(url, body[:40].replace(chr(10), " "), flush=True)
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)
"""


def test_pods_reach_each_other_through_services_and_dns_and_the_host(
    cluster: Cluster, core: client.CoreV1Api, kubectl: Kubectl, namespace: str
) -> None:
    host_ip = cluster.host_ip
    server, served = serve_on(host_ip)
    try:
        web = pod(
            "web",
            "",
            container={"command": ["python", "-m", "http.server", "8080"]},
            meta={"labels": {"app": "web"}},
        )
        core.create_namespaced_pod(namespace, web)
        service = {
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        }
        made = core.create_namespaced_service(namespace, service)
        assert made.spec.cluster_ip.startswith(cluster.net.service_range.rsplit(".", 2)[0])
        web_ip = wait_phase(core, namespace, "web", "Running").status.pod_ip

        urls = [
            "http://web/",  # the ClusterIP's port 80, translated to the pod's 8080
            f"http://web.{namespace}/",
            f"http://web.{namespace}.svc.cluster.local/",
            f"http://{made.spec.cluster_ip}/",
            f"http://{host_ip}:{server.server_port}/from-pod",
        ]
        fetcher = pod("fetch", FETCH, container={"args": urls})
        core.create_namespaced_pod(namespace, fetcher)
        done = wait_phase(core, namespace, "fetch", "Succeeded", "Failed")
        log = kubectl("logs", "fetch").stdout
        assert done.status.phase == "Succeeded", log
        assert log.count("<!DOCTYPE HTML>") == 4, log
        assert f"{host_ip}:{server.server_port}/from-pod host" in log
        assert served == ["/from-pod"]
        # and the host reaches a pod at its IP
        with urllib.request.urlopen(f"http://{web_ip}:8080/", timeout=5) as reply:
            assert b"Directory listing" in reply.read()
    finally:
        server.shutdown()
        server.server_close()


PROBE = """
import json, socket, sys
out = {}
for name in sys.argv[1:]:
    try:
        found = socket.getaddrinfo(name, 80, proto=socket.IPPROTO_TCP)
        out[name] = sorted({a[4][0] for a in found})
    except socket.gaierror as error:
        out[name] = str(error.strerror)
def connect(address):
    try:
        socket.create_connection((address, 80), timeout=3).close()
        return "connected"
    except OSError as error:
        return type(error).__name__ + (f" {error.errno}" if type(error) is OSError else "")
out["empty"] = connect(sys.argv[1])
out["unserved"] = connect(sys.argv[-1].rsplit(".", 1)[0] + ".250")
print(json.dumps(out), flush=True)
"""


def test_a_service_without_ready_pods_refuses_and_a_headless_one_has_no_address(
    cluster: Cluster, core: client.CoreV1Api, kubectl: Kubectl, namespace: str
) -> None:
    for name, ip in (("nobody", None), ("headless", "None")):
        spec: dict[str, Any] = {"selector": {"app": "nobody"}, "ports": [{"port": 80}]}
        if ip:
            spec["clusterIP"] = ip
        core.create_namespaced_service(namespace, {"metadata": {"name": name}, "spec": spec})
    cluster_ip = core.read_namespaced_service("nobody", namespace).spec.cluster_ip
    names = [f"nobody.{namespace}.svc.cluster.local", "headless", "example.com", cluster_ip]
    core.create_namespaced_pod(namespace, pod("probe", PROBE, container={"args": names}))
    done = wait_phase(core, namespace, "probe", "Succeeded", "Failed")
    log = kubectl("logs", "probe").stdout
    assert done.status.phase == "Succeeded", log
    out = json.loads(log)
    assert out[names[0]] == [cluster_ip]
    assert out["headless"] == "Name or service not known"  # no Ready pod, no record
    assert out["example.com"] == "Name or service not known"  # nothing leaves the machine
    assert out["empty"] == "ConnectionRefusedError"  # kube-proxy's reject
    assert out["unserved"] == "OSError 113"  # EHOSTUNREACH: refused, never sent anywhere


def test_a_mount_point_passes_to_the_running_pods_that_bind_under_it(cluster: Cluster) -> None:
    """When the last pod holding a mount point the kubelet made ends, a pod still running with a
    volume at or below it takes it over instead of it being removed from the host (which would
    unmount it inside that pod: a manager once lost its script so while its workers crashed)."""
    kubelet = cluster.kubelet
    assert kubelet is not None

    def run(name: str) -> PodRun:
        return PodRun(
            kubelet, {"metadata": {"uid": name, "namespace": "ns", "name": name}, "spec": {}}
        )

    runs = {name: run(name) for name in ("manager", "other", "ended")}
    runs["manager"].mount_targets = [Path("/gaggle/script"), Path("/gaggle/work")]
    runs["other"].mount_targets = [Path("/srv/files")]
    runs["ended"].mount_targets = [Path("/gaggle/script")]
    runs["ended"].finished = True
    assert binding_under(Path("/gaggle"), runs.values()) == [runs["manager"]]
    assert binding_under(Path("/gaggle/script"), runs.values()) == [runs["manager"]]
    assert binding_under(Path("/gaggle/script/sub"), runs.values()) == []
    assert binding_under(Path("/srv"), runs.values()) == [runs["other"]]
