"""pytest fixtures for the local cluster (registered by tests/conftest.py).

- ``cluster`` (session): a running ``Cluster`` with its kubelet; ``cluster.kubeconfig``,
  ``cluster.url``, ``cluster.kubelet.host_ip`` (where pods reach the host).
- ``namespace``: a fresh namespace with a random name, deleted (and waited for) afterwards, also
  when the test fails.
- ``kubectl``: real kubectl against the cluster, with a per-test ``--cache-dir`` and the test's
  namespace; skips with how to install kubectl when it is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.server import Cluster

KUBECTL_MISSING = (
    "kubectl is not installed. These machines' image ships kubectl 1.32 at /usr/bin/kubectl "
    "(the `kubectl` package of google-cloud-cli, not in Debian's archive); Debian 12 itself offers "
    "only kubectl 1.20 (apt-get install kubernetes-client), which these tests were not run with"
)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    local = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        local.start()
        yield local
    finally:
        local.stop()


def create_namespace(cluster: Cluster, name: str) -> None:
    assert cluster.store is not None
    store = cluster.store
    res = store.registry.find("", "v1", "namespaces")
    assert res is not None
    cluster.call(lambda: store.create(res, "", {"metadata": {"name": name}}))


def delete_namespace(cluster: Cluster, name: str, timeout: float = 60) -> None:
    """Delete a namespace and wait until it (and so everything in it) is gone.

    Objects whose finalizers are still held after 10 s (their operator stopped with the test
    that failed) lose their finalizers, so that a failed test leaves nothing behind."""
    assert cluster.store is not None
    store = cluster.store
    res = store.registry.find("", "v1", "namespaces")
    assert res is not None
    key = ("/namespaces", "", name)
    if cluster.call(lambda: key in store.objects):
        cluster.call(lambda: store.delete(res, "", name))
    start = time.monotonic()
    forced = False
    while cluster.call(lambda: key in store.objects):
        assert time.monotonic() < start + timeout, f"namespace {name} was not removed"
        if not forced and time.monotonic() > start + 10:
            cluster.call(lambda: release_finalizers(cluster, name))
            forced = True
        time.sleep(0.05)


def release_finalizers(cluster: Cluster, namespace: str) -> None:
    """Strip the finalizers of every object in ``namespace`` (on the cluster's loop)."""
    assert cluster.store is not None
    store = cluster.store
    for (key, ns, obj_name), obj in list(store.objects.items()):
        res = store.registry.by_key(key)
        if ns == namespace and res is not None and obj["metadata"].get("finalizers"):
            body = {**obj, "metadata": {**obj["metadata"], "finalizers": []}}
            store.update(res, ns, obj_name, body)


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:8]}"
    create_namespace(cluster, name)
    try:
        yield name
    finally:
        delete_namespace(cluster, name)


@dataclass
class Kubectl:
    """Real kubectl: ``kubectl("get", "pods")`` returns the completed process (check=True)."""

    kubeconfig: Path
    cache_dir: Path
    namespace: str

    def command(self, *args: str) -> list[str]:
        base = ["kubectl", "--kubeconfig", str(self.kubeconfig), "--cache-dir", str(self.cache_dir)]
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


@pytest.fixture
def kubectl(cluster: Cluster, namespace: str, tmp_path: Path) -> Kubectl:
    if shutil.which("kubectl") is None:
        pytest.skip(KUBECTL_MISSING)
    return Kubectl(cluster.kubeconfig, tmp_path / "kube-cache", namespace)
