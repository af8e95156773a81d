"""What a real node adds, seen through a LoadTest: the kernel kills a worker over its memory
limit, the kubelet cannot pull an image, the kubelet's probes judge the operator and restart it.
The pods run the image built from the Dockerfile on kubelet + containerd + runc (tests/cluster)."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest

from tests.cluster.cluster import Cluster
from tests.cluster.realnode import cgroups
from tests.conftest import Target
from tests.support.operator_harness import (
    FINAL,
    Installed,
    Operator,
    loadtest,
    story,
    wait_for_phase,
)

pytestmark = pytest.mark.timeout(240)

# worker-1 fills its memory before its first request: the kernel kills it (SIGKILL, no last
# word), and it sent nothing the target could count
HOG = """
import os
from gaggle import TaskSet, task, constant

HELD = []

class Plain(TaskSet):
    wait_time = constant(0.05)

    @task(on_start=True)
    async def fill(self) -> None:
        if os.environ.get("POD_NAME", "").endswith("-worker-1"):
            HELD.append(b"x" * (1 << 30))

    @task
    async def index(self) -> None:
        await self.get("/")
"""


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status.get("conditions", []) if c["type"] == kind)


def test_a_worker_over_its_memory_limit_is_oom_killed_and_the_run_goes_on_without_it(
    kubectl: Any, operator: Operator, bridge_target: tuple[Target, str]
) -> None:
    target, url = bridge_target
    memory = {"limits": {"memory": "256Mi"}}
    limited = {"spec": {"containers": [{"name": "gaggle", "resources": memory}]}}
    kubectl.apply(loadtest("oom", url, script={"inline": HOG}, runTime="8s",
                           workers={"replicas": 2, "template": limited}))  # fmt: skip
    status = wait_for_phase(kubectl, "oom", FINAL, operator)
    assert status["phase"] == "Succeeded", story(kubectl, operator)
    assert status["workers"]["lost"] == 1, status["workers"]
    assert {"name": "oom-worker-1", "reason": "OOMKilled", "exitCode": 137} in status["failedPods"]
    healthy = condition(status, "PodsHealthy")
    assert (healthy["status"], healthy["reason"]) == ("False", "PodTrouble"), healthy
    assert "oom-worker-1: OOMKilled" in healthy["message"]
    killed = kubectl.json("get", "pod", "oom-worker-1")["status"]["containerStatuses"][0]
    assert killed["state"]["terminated"]["reason"] == "OOMKilled"  # the kubelet's word, not ours
    served = target.counts()
    assert status["summary"]["requests"] == served["GET / 200"] > 0, (status["summary"], served)


def test_an_image_that_cannot_be_pulled_fails_the_run_in_the_kubelets_words(
    kubectl: Any, operator: Operator, bridge_target: tuple[Target, str]
) -> None:
    _, url = bridge_target
    kubectl.apply(loadtest("nope", url, image="localhost/nope:1",
                           startPolicy={"readyTimeoutSeconds": 10}))  # fmt: skip
    status = wait_for_phase(kubectl, "nope", FINAL, operator)
    assert (status["phase"], status["reason"]) == ("Failed", "WorkersNotReady"), status
    message = status["message"]
    assert "0/2 worker(s) connected after 10 s" in message, message
    assert "ErrImagePull" in message or "ImagePullBackOff" in message, message
    assert 'localhost/nope:1"' in message, message  # the kubelet's own text names the image
    kubectl("delete", "loadtest", "nope", "--wait=true", timeout=60)


def _operator_pid(cluster: Cluster, pod: dict[str, Any]) -> int:
    """The operator container's first process, as the host sees it."""
    assert cluster.real is not None
    container = pod["status"]["containerStatuses"][0]["containerID"].split("://")[-1]
    folder = cgroups.container(cluster.net.cid, "pids", container)
    assert folder is not None, f"no cgroup for container {container}"
    return min(int(pid) for pid in (folder / "cgroup.procs").read_text().split())


def _running_again(operator: Installed, restarts: int, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        pod = operator.pod()
        if pod is not None:
            (state,) = pod["status"].get("containerStatuses", [{}])
            if state.get("restartCount", 0) >= restarts and state.get("ready"):
                return pod
        assert time.monotonic() < deadline, f"not ready after {restarts} restart(s): {pod}"
        time.sleep(0.5)


def test_the_kubelets_probes_judge_the_operator_and_a_killed_one_comes_back(
    cluster: Cluster, kubectl: Any, installed_operator: Installed, bridge_target: tuple[Target, str]
) -> None:
    """Ready by its readiness probe; killed, restarted by the kubelet; hung (stopped), restarted by
    its liveness probe; and then it still runs a LoadTest."""
    operator = installed_operator
    pod = _running_again(operator, 0)
    ready = condition(pod["status"], "Ready")
    assert ready["status"] == "True"

    os.kill(_operator_pid(cluster, pod), signal.SIGKILL)
    pod = _running_again(operator, 1)

    # a hung operator: its /healthz no longer answers, and the liveness probe (made quick here)
    # has the kubelet kill and restart it
    fast = ('[{"op": "replace", "path": "/spec/template/spec/containers/0/livenessProbe",'
            ' "value": {"httpGet": {"path": "/healthz", "port": "health"}, "periodSeconds": 2,'
            ' "timeoutSeconds": 1, "failureThreshold": 2}}]')  # fmt: skip
    operator.kubectl("patch", "deployment", operator.name, "--type=json", "-p", fast)
    operator.kubectl("rollout", "status", f"deployment/{operator.name}", "--timeout=90s",
                     timeout=100)  # fmt: skip
    pod = _running_again(operator, 0)
    os.kill(_operator_pid(cluster, pod), signal.SIGSTOP)
    pod = _running_again(operator, 1)
    events = operator.kubectl.json(
        "get", "events", "--field-selector", f"involvedObject.name={pod['metadata']['name']}"
    )
    assert any("Liveness probe failed" in e.get("message", "") for e in events["items"]), events

    target, url = bridge_target
    kubectl.apply(loadtest("after", url, runTime="2s"))
    status = wait_for_phase(kubectl, "after", FINAL, operator)
    assert status["phase"] == "Succeeded", story(kubectl, operator)
    served = target.counts()
    assert status["summary"]["requests"] == served["GET / 200"] + served["GET /landing 200"]
