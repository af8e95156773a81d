"""pytest fixtures for the test cluster (registered by tests/conftest.py).

- ``cluster`` (session): a running ``Cluster``: the real control plane and the real node, with
  the project's image (tools/image.py) loaded as ``cluster.image``; ``cluster.kubeconfig``
  (cluster-admin), ``cluster.host_ip`` (where pods reach the host).
  Without root or Go it fails with the reason: never a silent skip.
- ``namespace``: a fresh namespace with a random name, deleted afterwards, also when the test
  fails (``delete_namespace`` waits for it to go, stripping a dead operator's finalizers).
- ``kubectl``: the real kubectl (v1.37, from ``binaries``) against the cluster, with a per-test
  ``--cache-dir`` and the test's namespace.
- ``real_cluster`` (module): a cluster of the test module's own, started in a fresh folder and
  stopped after the module, for tests that stop or inspect its node's parts (its policy
  controller, its network namespace); ``real_kubectl``: kubectl on it in a fresh namespace.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import binaries
from tests.cluster.cluster import Cluster
from tools.image import ensure


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    # not under pytest's 0700 basetemp: pods run as uid 10001 and read their volumes here
    workdir = Path(tempfile.mkdtemp(prefix="gaggle-cluster-"))
    # OwnerReferencesPermissionEnforcement, as OpenShift has it on: a child whose ownerReference
    # blocks its owner's deletion needs update on the owner's finalizers (finding 11).
    local = Cluster(workdir, admission=("OwnerReferencesPermissionEnforcement",))
    try:
        local.start(timeout=120)
        # the image built from the Dockerfile (make image builds it before pytest: a hit here)
        (local.image,) = local.load_image(ensure().archive)
        yield local
    finally:
        local.stop()
        subprocess.run(["rm", "-rf", str(workdir)], check=False)


@pytest.fixture(scope="module")
def real_cluster() -> Iterator[Cluster]:
    workdir = Path(tempfile.mkdtemp(prefix="gaggle-cluster-"))
    local = Cluster(workdir)
    try:
        local.start(timeout=120)  # a loaded 2-core machine: the control plane alone takes 30 s
        yield local
    finally:
        local.stop()
        subprocess.run(["rm", "-rf", str(workdir)], check=False)


def delete_namespace(cluster: Cluster, name: str, timeout: float = 90) -> None:
    """Delete a namespace and wait until it (and so everything in it) is gone.

    Objects whose finalizers are still held after 15 s (their operator stopped with the test
    that failed) lose them, so that a failed test leaves nothing behind."""
    cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")
    start = time.monotonic()
    forced = False
    while cluster.kubectl("get", "namespace", name, "--ignore-not-found", "-o", "name"):
        assert time.monotonic() < start + timeout, f"namespace {name} was not removed"
        if not forced and time.monotonic() > start + 15:
            release_finalizers(cluster, name)
            forced = True
        time.sleep(0.2)


def release_finalizers(cluster: Cluster, namespace: str) -> None:
    """Strip the finalizers of every LoadTest left in ``namespace`` (kopf's, of a dead operator)."""
    found = cluster.kubectl(
        "get", "loadtests.gaggle.dev", "-n", namespace, "-o", "name", "--ignore-not-found"
    )
    for name in found.split():
        cluster.kubectl(
            "patch", "-n", namespace, name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}'
        )


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    """A new namespace, deleted afterwards (not waited for: the namespace controller empties it
    while the next test runs, as on any cluster; the names never repeat)."""
    name = f"test-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false")


@dataclass
class Kubectl:
    """Real kubectl: ``kubectl("get", "pods")`` returns the completed process (check=True)."""

    kubeconfig: Path
    cache_dir: Path
    namespace: str

    def command(self, *args: str) -> list[str]:
        base = [
            str(binaries.BIN / "kubectl"),
            "--kubeconfig",
            str(self.kubeconfig),
            "--cache-dir",
            str(self.cache_dir),
        ]
        return [*base, "-n", self.namespace, *args]

    def __call__(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            self.command(*args),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "KUBECONFIG": str(self.kubeconfig)},
        )
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {done.stderr}")
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "-o", "json").stdout)

    def apply(self, manifest: str) -> subprocess.CompletedProcess[str]:
        return self("apply", "-f", "-", input=manifest)

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def as_user(self, kubeconfig: Path) -> Kubectl:
        """The same kubectl acting with another kubeconfig (another user)."""
        return Kubectl(
            kubeconfig, self.cache_dir.with_name(self.cache_dir.name + "-user"), self.namespace
        )


@pytest.fixture
def kubectl(cluster: Cluster, namespace: str, tmp_path: Path) -> Kubectl:
    return Kubectl(cluster.kubeconfig, tmp_path / "kube-cache", namespace)


@pytest.fixture
def real_kubectl(real_cluster: Cluster, tmp_path: Path) -> Iterator[Kubectl]:
    name = f"test-{uuid.uuid4().hex[:8]}"
    real_cluster.kubectl("create", "namespace", name)
    try:
        yield Kubectl(real_cluster.kubeconfig, tmp_path / "kube-cache", name)
    finally:
        real_cluster.kubectl("delete", "namespace", name, "--wait=false")
