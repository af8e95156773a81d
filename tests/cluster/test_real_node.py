"""The node (kubelet v1.37 + containerd 2.4 + runc) does what a production node does.

It registers as a Node with its real versions; it runs images (our toolbox, imported) as the
pod's user with a read-only root, serves their logs and exec; its httpGet probes decide
readiness; it enforces memory limits (the kernel's OOM killer) and CPU limits (CFS throttling);
and a missing image ends in the kubelet's own pull error, not a hang. The network and the
teardown have files of their own (test_real_node_network.py, test_real_node_teardown.py).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.cluster.cluster import Cluster
from tests.cluster.fixtures import Kubectl
from tests.cluster.realnode import NODE, cgroups, images

pytestmark = pytest.mark.timeout(300)

T = TypeVar("T")


def toolbox(cluster: Cluster) -> str:
    assert cluster.real is not None
    assert cluster.real.toolbox is not None
    return cluster.real.toolbox.name


def pod(
    name: str,
    image: str,
    command: list[str],
    restart: str = "Never",
    **container: Any,
) -> dict[str, Any]:
    """A one-container pod pinned to the node (``container`` adds to the container's spec)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "nodeName": NODE,
            "restartPolicy": restart,
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "main",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": command,
                    **container,
                }
            ],
        },
    }


def apply(kubectl: Kubectl, *objects: dict[str, Any]) -> None:
    kubectl.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 120) -> T:
    """Poll ``probe`` until it returns something (not None/False), at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def status(kubectl: Kubectl, name: str) -> dict[str, Any]:
    found: dict[str, Any] = kubectl.json("get", "pod", name)["status"]
    return found


def phase(kubectl: Kubectl, name: str, *wanted: str) -> str | None:
    now = status(kubectl, name).get("phase")
    return now if now in wanted else None


def container_state(kubectl: Kubectl, name: str) -> dict[str, Any]:
    statuses = status(kubectl, name).get("containerStatuses") or [{}]
    state: dict[str, Any] = statuses[0].get("state") or {}
    return state


def ready(kubectl: Kubectl, name: str) -> bool:
    conditions = status(kubectl, name).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def test_the_node_is_a_real_kubelet_on_containerd(real_cluster: Cluster) -> None:
    wide = real_cluster.kubectl("get", "nodes", "-o", "wide").splitlines()
    header, row = wide[0].split(), wide[1].split()
    assert len(wide) == 2
    assert row[0] == NODE
    assert row[header.index("STATUS")] == "Ready"
    assert row[header.index("VERSION")] == "v1.37.2"
    assert row[-1] == "containerd://2.4.2"
    info = json.loads(real_cluster.kubectl("get", "node", NODE, "-o", "json"))["status"]
    assert info["nodeInfo"]["kubeletVersion"] == "v1.37.2"
    assert int(info["capacity"]["cpu"]) >= 1


def test_a_pod_runs_its_image_as_its_user_and_serves_logs_and_exec(
    real_cluster: Cluster, real_kubectl: Kubectl
) -> None:
    restricted: dict[str, Any] = {
        "securityContext": {
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    script = "id; echo note > /tmp/note && cat /tmp/note; touch /root-file || echo read-only root"
    once = pod("once", toolbox(real_cluster), ["sh", "-c", script], **restricted)
    once["spec"]["volumes"] = [{"name": "tmp", "emptyDir": {}}]
    running = pod("running", toolbox(real_cluster), ["sleep", "3600"], **restricted)
    running["spec"]["volumes"] = [{"name": "tmp", "emptyDir": {}}]
    apply(real_kubectl, once, running)

    assert wait_for("the pod to end", lambda: phase(real_kubectl, "once", "Succeeded", "Failed"))
    assert phase(real_kubectl, "once", "Succeeded")
    logs = real_kubectl("logs", "once").stdout
    assert "uid=10001(gaggle) gid=10001(gaggle)" in logs
    assert "note\n" in logs
    assert "Read-only file system" in logs
    assert "read-only root" in logs

    wait_for("the pod to run", lambda: phase(real_kubectl, "running", "Running"))
    inside = real_kubectl("exec", "running", "--", "sh", "-c", "id -u; echo $((6 * 7))").stdout
    assert inside == "10001\n42\n"


def test_an_http_readiness_probe_decides_readiness(
    real_cluster: Cluster, real_kubectl: Kubectl
) -> None:
    serve = (
        "mkdir -p /tmp/www && echo hello > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"
    )
    web = pod(
        "web",
        toolbox(real_cluster),
        ["sh", "-c", serve],
        restart="Always",
        readinessProbe={"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 1},
        securityContext={"runAsUser": 10001, "readOnlyRootFilesystem": True},
        volumeMounts=[{"name": "tmp", "mountPath": "/tmp"}],
    )
    web["spec"]["volumes"] = [{"name": "tmp", "emptyDir": {}}]
    apply(real_kubectl, web)

    def probe_failed() -> bool:
        events = real_kubectl.json("get", "events", "--field-selector", "involvedObject.name=web")
        return any(
            e["reason"] == "Unhealthy" and "statuscode: 404" in e["message"]
            for e in events["items"]
        )

    wait_for("the kubelet to report the failing probe", probe_failed)
    assert phase(real_kubectl, "web", "Running")
    assert not ready(real_kubectl, "web")
    real_kubectl("exec", "web", "--", "touch", "/tmp/www/ready")
    wait_for("the pod to become Ready", lambda: ready(real_kubectl, "web"))

    pod_ip = status(real_kubectl, "web")["podIP"]
    assert pod_ip.startswith(real_cluster.net.subnet + ".")
    with urllib.request.urlopen(f"http://{pod_ip}:8080/index.html", timeout=10) as response:
        assert response.read() == b"hello\n"


def test_a_container_over_its_memory_limit_is_oom_killed(
    real_cluster: Cluster, real_kubectl: Kubectl
) -> None:
    hog = pod(
        "hog",
        toolbox(real_cluster),
        ["sh", "-c", "head -c 400m /dev/zero | tail"],  # tail holds all 400 MiB: one line
        resources={"limits": {"memory": "64Mi"}},
    )
    apply(real_kubectl, hog)
    terminated = wait_for(
        "the hog to be killed", lambda: container_state(real_kubectl, "hog").get("terminated")
    )
    assert terminated["reason"] == "OOMKilled"
    assert terminated["exitCode"] == 137
    assert wait_for("the pod to fail", lambda: phase(real_kubectl, "hog", "Failed"))


def test_a_cpu_limit_throttles_a_spinner(real_cluster: Cluster, real_kubectl: Kubectl) -> None:
    spinner = pod(
        "spinner",
        toolbox(real_cluster),
        ["sh", "-c", "while :; do :; done"],
        resources={"limits": {"cpu": "100m"}},
    )
    apply(real_kubectl, spinner)
    wait_for("the spinner to run", lambda: phase(real_kubectl, "spinner", "Running"))
    container_id = status(real_kubectl, "spinner")["containerStatuses"][0]["containerID"]
    folder = cgroups.container(real_cluster.net.cid, "cpu", container_id.split("://")[1])
    assert folder is not None
    assert (folder / "cpu.cfs_quota_us").read_text().strip() == "10000"  # 100m of 100 ms

    def throttled() -> int:
        stat = dict(line.split() for line in (folder / "cpu.stat").read_text().splitlines())
        return int(stat["nr_throttled"])

    assert wait_for("the kernel to throttle the spinner", throttled) > 0


def test_a_missing_image_ends_in_the_kubelets_pull_error(
    real_cluster: Cluster, real_kubectl: Kubectl
) -> None:
    apply(real_kubectl, pod("nope", "localhost/nope:1", ["sh"]))

    def waiting() -> dict[str, Any] | None:
        state = container_state(real_kubectl, "nope").get("waiting") or {}
        return state if state.get("reason") in ("ErrImagePull", "ImagePullBackOff") else None

    state = wait_for("the pull to fail", waiting, timeout=90)
    if state["reason"] == "ErrImagePull":
        assert 'failed to pull and unpack image "localhost/nope:1"' in state["message"]
    else:
        assert 'Back-off pulling image "localhost/nope:1"' in state["message"]
    assert phase(real_kubectl, "nope", "Pending")


def test_an_image_loaded_by_the_harness_runs(
    real_cluster: Cluster, real_kubectl: Kubectl, tmp_path: Path
) -> None:
    files = {"bin/busybox": (images.BUSYBOX.read_bytes(), 0o755)}
    config: dict[str, object] = {"Entrypoint": ["/bin/busybox", "echo", "loaded", tmp_path.name]}
    image = images.write_archive(
        tmp_path / "x.tar", "localhost/loaded", images.layer(files), config
    )
    assert real_cluster.load_image(image.archive) == [image.name]
    loaded = pod("loaded", image.name, [])
    del loaded["spec"]["containers"][0]["command"]  # the image's own entrypoint
    apply(real_kubectl, loaded)
    assert wait_for("the pod to end", lambda: phase(real_kubectl, "loaded", "Succeeded", "Failed"))
    assert real_kubectl("logs", "loaded").stdout == f"loaded {tmp_path.name}\n"
