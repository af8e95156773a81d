"""The operator under test, as its Deployment runs it (``kopf run`` in a subprocess), plus a
counting target the local cluster's pods can reach, and helpers to watch a LoadTest.

A pytest plugin (tests/conftest.py registers it): fixtures ``operator`` (an ``Operator``, running)
and ``bridge_target``; helpers ``operating`` (an operator with extra environment, e.g. the chart's
defaults), ``loadtest``, ``wait_for_phase`` and ``story``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.server import Cluster
from tests.conftest import ROOT, Target
from tests.test_gaggle_mode import TEST
from tests.test_operator_crd import CRD

FINAL = ("Succeeded", "Failed", "Aborted")


class Operator:
    """``kopf run -m gaggle.operator.handlers`` for one namespace; ``restart()`` as a crash
    and a new pod would; ``log`` is what it printed; ``env`` adds to (or replaces) its
    environment, as the Deployment's env does."""

    def __init__(
        self, cluster: Cluster, namespace: str, log: Path, env: dict[str, str] | None = None
    ) -> None:
        self.cluster, self.namespace, self.log = cluster, namespace, log
        self.env = dict(env or {})
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig),
               "GAGGLE_IMAGE": "gaggle:test", "GAGGLE_OPERATOR_TICK": "1", **self.env}  # fmt: skip
        with self.log.open("a") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "kopf", "run", "--standalone", "--namespace",
                 self.namespace, "-m", "gaggle.operator.handlers"],
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


def story(kubectl: Any, operator: Operator) -> str:
    """The operator's log and every pod's, for a failure message."""
    parts = [f"--- operator ---\n{operator.read()[-4000:]}"]
    for pod in kubectl.json("get", "pods")["items"]:
        name = pod["metadata"]["name"]
        logs = kubectl("logs", name, check=False)
        parts.append(f"--- {name} ({pod['status'].get('phase')}) ---\n{logs.stdout[-3000:]}"
                     f"{logs.stderr[-1000:]}")  # fmt: skip
    return "\n".join(parts)


def wait_for_phase(
    kubectl: Any, name: str, phases: tuple[str, ...], operator: Operator
) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        status: dict[str, Any] = kubectl.json("get", "loadtest", name).get("status", {})
        if status.get("phase") in phases:
            return status
        assert time.monotonic() < deadline, f"{status}\n{story(kubectl, operator)}"
        time.sleep(0.5)


def wait_until_no_pod_runs(kubectl: Any, operator: Operator, timeout: float = 30) -> None:
    """Until every pod of the test's namespace has ended (the operator stopped the load)."""
    deadline = time.monotonic() + timeout
    while any(p["status"].get("phase") == "Running" for p in kubectl.json("get", "pods")["items"]):
        assert time.monotonic() < deadline, story(kubectl, operator)
        time.sleep(0.5)
