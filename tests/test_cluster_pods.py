"""Contract tests of the local kubelet: pods really run as processes, report status like a kubelet,
restart by policy, stop on SIGTERM, see their volumes at their mountPaths, and reach each other by
Service name in their own network namespaces; nothing is left behind."""

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

from tests.cluster.fixtures import Kubectl
from tests.cluster.kubelet import binding_under
from tests.cluster.pod import PodRun
from tests.cluster.server import Cluster

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def core(cluster: Cluster) -> Iterator[client.CoreV1Api]:
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    try:
        yield client.CoreV1Api(api)
    finally:
        api.close()


@pytest.fixture
def netns(cluster: Cluster) -> Cluster:
    """The cluster, when its pods have their own network namespaces (root, iproute2)."""
    if cluster.kubelet is None or cluster.kubelet.net is None:
        why = cluster.kubelet.why_not_netns if cluster.kubelet else "no kubelet"
        pytest.skip(f"pod network namespaces are not available here: {why}")
    return cluster


def pod(name: str, code: str, restart: str = "Never", **spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": "gaggle:test", "command": ["python", "-c", code]}
    container.update(spec.pop("container", {}))
    body = {"restartPolicy": restart, "terminationGracePeriodSeconds": 5, "containers": [container]}
    return {"metadata": {"name": name, **spec.pop("meta", {})}, "spec": {**body, **spec}}


def wait_phase(
    core: client.CoreV1Api, ns: str, name: str, *phases: str, timeout: float = 20
) -> Any:
    deadline = time.monotonic() + timeout
    while (got := core.read_namespaced_pod(name, ns)).status.phase not in phases:
        assert time.monotonic() < deadline, f"{name} stayed {got.status.phase}: {got.status}"
        time.sleep(0.05)
    return got


def eventually(check: Callable[[], Any], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)
    return result


WRITER = """
import json, os, pathlib, sys
out = {k: os.environ.get(k) for k in ("POD_NAME", "POD_NAMESPACE", "POD_IP", "GREETING", "CFG_a")}
out["cwd"] = os.getcwd()
out["python"] = sys.executable
print("written by", os.environ["POD_NAME"], flush=True)
pathlib.Path(sys.argv[1]).write_text(json.dumps(out))
"""


def test_a_pod_runs_its_command_and_succeeds(
    cluster: Cluster, core: client.CoreV1Api, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "cfg"}, "data": {"a": "1"}})
    result = tmp_path / "out.json"
    field = lambda path: {"valueFrom": {"fieldRef": {"fieldPath": path}}}  # noqa: E731
    container = {
        "args": [str(result)],
        "workingDir": str(tmp_path),
        "env": [
            {"name": "POD_NAME", **field("metadata.name")},
            {"name": "POD_NAMESPACE", **field("metadata.namespace")},
            {"name": "POD_IP", **field("status.podIP")},
            {"name": "GREETING", "value": "hello $(POD_NAME)"},
        ],
        "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
    }
    core.create_namespaced_pod(namespace, pod("writer", WRITER, container=container))
    done = wait_phase(core, namespace, "writer", "Succeeded", "Failed")
    assert done.status.phase == "Succeeded"
    state = done.status.container_statuses[0]
    assert state.state.terminated.exit_code == 0
    assert state.state.terminated.reason == "Completed"
    assert state.image == "gaggle:test"
    assert state.image_id
    assert done.status.pod_ip

    written = json.loads(result.read_text())
    assert written["POD_NAME"] == "writer"
    assert written["POD_NAMESPACE"] == namespace
    assert written["POD_IP"] == done.status.pod_ip
    assert written["GREETING"] == "hello writer"
    assert written["CFG_a"] == "1"
    assert written["cwd"] == str(tmp_path)
    assert written["python"].startswith(str(cluster.venv_bin.parent))
    assert kubectl("logs", "writer").stdout == "written by writer\n"
    lines = kubectl("get", "pods").stdout.splitlines()
    assert lines[1].split()[:3] == ["writer", "0/1", "Completed"]


def test_exit_codes_and_restart_policies(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_pod(namespace, pod("fails", "raise SystemExit(3)"))
    failed = wait_phase(core, namespace, "fails", "Succeeded", "Failed")
    assert failed.status.phase == "Failed"
    terminated = failed.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (3, "Error")

    # fails the first time, succeeds the second: OnFailure restarts it once
    flaky = (
        "import os, sys; sys.exit(0 if os.path.exists('marker') else (open('marker', 'w'), 4)[1])"
    )
    core.create_namespaced_pod(namespace, pod("flaky", flaky, "OnFailure"))
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
    core.create_namespaced_pod(namespace, pod("polite", polite))
    core.create_namespaced_pod(
        namespace, pod("stubborn", stubborn, terminationGracePeriodSeconds=1)
    )
    for name in ("polite", "stubborn"):
        running = wait_phase(core, namespace, name, "Running")
        assert running.status.container_statuses[0].ready
    time.sleep(0.3)  # let polite install its handler

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
    assert 0.9 < time.monotonic() - started < 10  # waited for the grace period, then killed


def test_volumes_are_mounted_at_their_paths_in_the_pod_only(
    netns: Cluster, core: client.CoreV1Api, namespace: str, tmp_path: Path
) -> None:
    mount = Path(f"/etc/gaggle-test-{secrets.token_hex(4)}")
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "files"}, "data": {"rules.py": "RULES = 1\n"}}
    )
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "creds"}, "stringData": {"token": "s3cret"}}
    )
    code = f"""
import pathlib
read = lambda p: pathlib.Path(p).read_text()
text = read("{mount}/rules.py") + read("/var/run/creds/token")
pathlib.Path("/scratch/x").write_text("x")
pathlib.Path({str(tmp_path / "seen")!r}).write_text(text)
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
    done = wait_phase(core, namespace, "mounts", "Succeeded", "Failed")
    assert done.status.phase == "Succeeded", done.status
    assert (tmp_path / "seen").read_text() == "RULES = 1\ns3cret"
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
import sys, time, urllib.request
deadline = time.time() + 15
for url in sys.argv[1:]:
    while True:
        try:
            body = urllib.request.urlopen(url, timeout=2).read().decode()
            print(url, body, flush=True)
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)
"""


def test_pods_reach_each_other_by_service_name_and_the_host(
    netns: Cluster, core: client.CoreV1Api, kubectl: Kubectl, namespace: str
) -> None:
    assert netns.kubelet is not None
    host_ip = netns.kubelet.host_ip
    server, served = serve_on(host_ip)
    try:
        web = pod("web", "", container={"command": ["python", "-m", "http.server", "8080"]},
                  meta={"labels": {"app": "web"}})  # fmt: skip
        core.create_namespaced_pod(namespace, web)
        service = {"metadata": {"name": "web"},
                   "spec": {"selector": {"app": "web"}, "ports": [{"port": 8080}]}}  # fmt: skip
        core.create_namespaced_service(namespace, service)
        web_ip = wait_phase(core, namespace, "web", "Running").status.pod_ip

        urls = [
            "http://web:8080/",
            f"http://web.{namespace}:8080/",
            f"http://web.{namespace}.svc.cluster.local:8080/",
            f"http://{host_ip}:{server.server_port}/from-pod",
        ]
        fetcher = pod("fetch", FETCH, container={"args": urls})
        core.create_namespaced_pod(namespace, fetcher)
        done = wait_phase(core, namespace, "fetch", "Succeeded", "Failed")
        log = kubectl("logs", "fetch").stdout
        assert done.status.phase == "Succeeded", log
        assert "Directory listing" in log
        assert f"{host_ip}:{server.server_port}/from-pod host" in log
        assert served == ["/from-pod"]
        # and the host reaches a pod at its IP
        with urllib.request.urlopen(f"http://{web_ip}:8080/", timeout=5) as reply:
            assert b"Directory listing" in reply.read()
    finally:
        server.shutdown()
        server.server_close()


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
