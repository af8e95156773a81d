"""The operator under test, two ways: installed with real helm as users install it (the chart's
Deployment, its pod on the real node as uid 10001 with its own ServiceAccount, RBAC enforced),
or, for speed where the install is not what is tested, ``kopf run`` in a subprocess on the host
with the cluster-admin kubeconfig. Plus a counting target the cluster's pods can reach, and
helpers to watch a LoadTest.

A pytest plugin (tests/conftest.py registers it): fixtures ``operator`` (an ``Operator`` on the
host, running), ``installed_operator`` (an ``Installed`` release) and ``bridge_target``; helpers
``operating`` (a host operator with extra environment), ``installing`` (a release with extra
values), ``loadtest``, ``wait_for_phase`` and ``story``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.cluster import Cluster
from tests.conftest import ROOT, Target
from tests.gaggle_mode.test_mode import TEST
from tests.operator.test_crd import CRD
from tests.support.tools import helm

FINAL = ("Succeeded", "Failed", "Aborted")


class Operator:
    """``gaggle-operator run`` (kopf behind its Lease, as the Deployment runs it) for one
    namespace, its Lease in that namespace; ``restart()`` as a crash and a new pod would (the
    same identity, so it need not wait out its own Lease); ``log`` is what it printed; ``env``
    adds to (or replaces) its environment, as the Deployment's env does."""

    def __init__(
        self,
        cluster: Cluster,
        namespace: str,
        log: Path,
        env: dict[str, str] | None = None,
        identity: str = "operator-0",
        lease_seconds: float = 15,
    ) -> None:
        self.cluster, self.namespace, self.log = cluster, namespace, log
        self.env = dict(env or {})
        self.identity, self.lease_seconds = identity, lease_seconds
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig),
               "GAGGLE_IMAGE": self.cluster.image, "GAGGLE_OPERATOR_TICK": "1",
               "POD_NAME": self.identity, **self.env}  # fmt: skip
        with self.log.open("a") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gaggle_operator", "run", "--namespace", self.namespace,
                 "--lease-namespace", self.namespace, "--lease-seconds", str(self.lease_seconds),
                 "--health-port", "0"],
                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
            )  # fmt: skip

    def stop(self, kill: bool = False) -> None:
        if self.process is None:
            return
        self.process.kill() if kill else self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop(kill=True)
        self.start()

    def read(self) -> str:
        return self.log.read_text()


@contextmanager
def operating(
    cluster: Cluster, namespace: str, kubectl: Any, log: Path, env: dict[str, str] | None = None
) -> Iterator[Operator]:
    """An operator watching the namespace (the CRD applied first), stopped on the way out."""
    kubectl("apply", "-f", str(CRD))
    kubectl("wait", "--for", "condition=established", "crd/loadtests.gaggle.dev", "--timeout=20s")
    running = Operator(cluster, namespace, log, env)
    running.start()
    try:
        yield running
    finally:
        # While the operator still runs, so that it releases its finalizers (kopf holds one
        # while a timer runs) and the namespace goes at once.
        kubectl("delete", "loadtests", "--all", "--timeout=30s", check=False)
        running.stop()


@pytest.fixture
def operator(cluster: Cluster, namespace: str, kubectl: Any, tmp_path: Path) -> Iterator[Operator]:
    """The operator, watching the test's namespace, with no defaults set."""
    with operating(cluster, namespace, kubectl, tmp_path / "operator.log") as running:
        yield running


@pytest.fixture
def bridge_target(cluster: Cluster, tmp_path: Path) -> Iterator[tuple[Target, str]]:
    """A counting target the pods can reach: it also listens on the cluster's bridge."""
    port_file = tmp_path / "target.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.target", "--port-file", str(port_file),
         "--also-bind", cluster.host_ip],
        cwd=ROOT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while not port_file.exists() or not port_file.read_text():
            assert process.poll() is None, "the target exited"
            assert time.monotonic() < deadline, "the target did not start"
            time.sleep(0.05)
        port = json.loads(port_file.read_text())["port"]
        yield Target(port), f"http://{cluster.host_ip}:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


class Installed:
    """The chart installed with real helm as release ``gaggle-<id>`` in a namespace of its own
    (as users install it in gaggle-system), watching only the given namespaces (so that no other
    operator ever shares a LoadTest with it). ``read`` is the operator pod's log; ``restart``
    deletes the pod, as a crash or an eviction would, and waits for the Deployment's new one."""

    def __init__(
        self, cluster: Cluster, watched: list[str], kubectl: Any, values: str = ""
    ) -> None:
        self.cluster, self.watched, self.values = cluster, watched, values
        self.release = f"gaggle-{uuid.uuid4().hex[:6]}"
        self.namespace = self.release
        self.kubectl = type(kubectl)(kubectl.kubeconfig, kubectl.cache_dir, self.namespace)
        self.name = f"{self.release}-operator"  # the chart's fullname is a release named gaggle-…

    def helm(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        command = [str(helm()), "--kubeconfig", str(self.cluster.kubeconfig),
                   "--namespace", self.namespace, *args]  # fmt: skip
        done = subprocess.run(command, input=input, capture_output=True, text=True, timeout=180)
        if check:
            assert done.returncode == 0, f"helm {' '.join(args)}: {done.stderr}\n{self.read()}"
        return done

    def install(self, *sets: str) -> None:
        self.install_chart(ROOT / "charts" / "gaggle", *sets)

    def install_chart(self, chart: Path, *sets: str) -> None:
        watched = "{" + ",".join(self.watched) + "}"  # none: the chart's default, every one
        flags = ["--set", "installCRDs=false", *image_values(self.cluster.image),
                 *(f for s in sets for f in ("--set", s))]  # fmt: skip
        if self.watched:
            flags += ["--set", f"watchNamespaces={watched}"]
        if self.values:
            flags += ["--values", "-"]
        self.helm("install", self.release, str(chart), *flags,
                  "--create-namespace", "--wait", "--timeout", "120s",
                  input=self.values or None)  # fmt: skip

    def uninstall(self, check: bool = True) -> None:
        self.helm("uninstall", self.release, "--wait", "--timeout", "60s", check=check)

    def pod(self) -> dict[str, Any] | None:
        found = self.kubectl.json("get", "pods", "-l", "app.kubernetes.io/component=operator")
        running = [p for p in found["items"] if not p["metadata"].get("deletionTimestamp")]
        return running[0] if running else None

    def read(self) -> str:
        pod = self.pod()
        if pod is None:
            return "(no operator pod)"
        done = self.kubectl("logs", pod["metadata"]["name"], check=False)
        return str(done.stdout + done.stderr)

    def restart(self) -> None:
        old = self.pod()
        assert old is not None
        self.kubectl("delete", "pod", old["metadata"]["name"], "--wait=false")
        self.kubectl("rollout", "status", f"deployment/{self.name}", "--timeout=90s", timeout=100)


def image_values(image: str) -> list[str]:
    """helm's --set flags naming ``localhost/gaggle:<tag>``, the image loaded into the node
    (IfNotPresent, the chart's default, finds it there: nothing is pulled)."""
    registry, rest = image.split("/", 1)
    repository, tag = rest.rsplit(":", 1)
    return ["--set", f"image.registry={registry}", "--set", f"image.repository={repository}",
            "--set", f"image.tag={tag}"]  # fmt: skip


@contextmanager
def installing(
    cluster: Cluster, namespaces: str | list[str], kubectl: Any, values: str = ""
) -> Iterator[Installed]:
    """The chart installed watching ``namespaces`` (the CRD applied apart, as a cluster admin
    would), then uninstalled."""
    watched = [namespaces] if isinstance(namespaces, str) else namespaces
    kubectl("apply", "-f", str(CRD))
    kubectl("wait", "--for", "condition=established", "crd/loadtests.gaggle.dev", "--timeout=20s")
    release = Installed(cluster, watched, kubectl, values)
    try:
        release.install()
        yield release
    finally:
        # while the operator still runs, so that it releases its finalizers
        for namespace in watched:
            kubectl("delete", "loadtests", "--all", "-n", namespace, "--timeout=30s",
                    check=False, timeout=45)  # fmt: skip
        release.uninstall(check=False)  # gone already when the test uninstalled it
        cluster.kubectl("delete", "namespace", release.namespace, "--wait=false")


@pytest.fixture
def installed_operator(cluster: Cluster, namespace: str, kubectl: Any) -> Iterator[Installed]:
    """The operator as the chart installs it, watching the test's namespace."""
    with installing(cluster, namespace, kubectl) as release:
        yield release


def loadtest(name: str, host: str, **spec: Any) -> str:
    """A LoadTest's manifest; a field given as None is left out (e.g. users=None)."""
    body = {"script": {"inline": TEST}, "host": host, "users": 4, "hatchRate": 40,
            "runTime": "3s", "resetMetrics": False, "workers": {"replicas": 2}, **spec}  # fmt: skip
    body = {key: value for key, value in body.items() if value is not None}
    return yaml.safe_dump({"apiVersion": "gaggle.dev/v1alpha1", "kind": "LoadTest",
                           "metadata": {"name": name}, "spec": body})  # fmt: skip


def story(kubectl: Any, operator: Operator | Installed) -> str:
    """The operator's log and every pod's, for a failure message."""
    parts = [f"--- operator ---\n{operator.read()[-4000:]}"]
    for pod in kubectl.json("get", "pods")["items"]:
        if pod["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "operator":
            continue
        name = pod["metadata"]["name"]
        logs = kubectl("logs", name, check=False)
        parts.append(f"--- {name} ({pod['status'].get('phase')}) ---\n{logs.stdout[-3000:]}"
                     f"{logs.stderr[-1000:]}")  # fmt: skip
    return "\n".join(parts)


def wait_for_phase(
    kubectl: Any, name: str, phases: tuple[str, ...], operator: Operator | Installed
) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        status: dict[str, Any] = kubectl.json("get", "loadtest", name).get("status", {})
        if status.get("phase") in phases:
            return status
        assert time.monotonic() < deadline, f"{status}\n{story(kubectl, operator)}"
        time.sleep(0.5)


def wait_until_no_pod_runs(
    kubectl: Any, operator: Operator | Installed, timeout: float = 30
) -> None:
    """Until every pod of the test's namespace has ended (the operator stopped the load)."""
    deadline = time.monotonic() + timeout
    while any(p["status"].get("phase") == "Running" for p in kubectl.json("get", "pods")["items"]):
        assert time.monotonic() < deadline, story(kubectl, operator)
        time.sleep(0.5)
