"""The local cluster cleans up after itself: stopping it kills its pods and removes every network
namespace, veth, bridge and hosts file it made; a later cluster sweeps what a killed one left.
Also: host networking (the mode for machines without root) runs pods too."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import network
from tests.cluster.fixtures import create_namespace
from tests.cluster.server import Cluster
from tests.conftest import ROOT

pytestmark = pytest.mark.timeout(60)

SLEEPER: dict[str, Any] = {
    "metadata": {"name": "sleeper"},
    "spec": {
        "restartPolicy": "Never",
        "containers": [{"name": "main", "image": "gaggle", "command": ["sleep", "60"]}],
    },
}


def links() -> str:
    return network.ip("link", "show", check=False).stdout


def netns_names() -> list[str]:
    return [line.split(" ")[0] for line in network.ip("netns", "list").stdout.splitlines()]


def read_pod(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    assert cluster.store is not None
    store = cluster.store
    res = store.registry.find("", "v1", "pods")
    assert res is not None
    return cluster.call(lambda: store.get(res, namespace, name))


def run_pod(cluster: Cluster, namespace: str, body: dict[str, Any], *phases: str) -> dict[str, Any]:
    """Create a pod through the store and wait until it reaches one of ``phases``."""
    assert cluster.store is not None
    store = cluster.store
    res = store.registry.find("", "v1", "pods")
    assert res is not None
    cluster.call(lambda: store.create(res, namespace, body))
    deadline = time.monotonic() + 20
    while (pod := read_pod(cluster, namespace, body["metadata"]["name"]))["status"][
        "phase"
    ] not in phases:
        assert time.monotonic() < deadline, pod["status"]
        time.sleep(0.05)
    return pod


def test_stopping_the_cluster_kills_pods_and_removes_its_network(tmp_path: Path) -> None:
    if reason := network.usable():
        pytest.skip(f"pod network namespaces are not available here: {reason}")
    cluster = Cluster(tmp_path)
    secrets_before = Path("/var/run/secrets").exists()
    try:
        cluster.start()
        assert cluster.kubelet is not None
        assert cluster.kubelet.net is not None
        cid = cluster.kubelet.net.cid
        create_namespace(cluster, "doomed")
        run_pod(cluster, "doomed", SLEEPER, "Running")
        run = next(iter(cluster.kubelet.runs.values()))
        pid = run.processes["main"].pid
        assert run.netns in netns_names()
        assert f"ggb{cid}" in links()
        assert (network.NETNS_ETC / run.netns / "hosts").exists()
        assert run.token_volume  # the pod has its service account token, bind-mounted
        assert (tmp_path / "pki" / "ca.key").exists()
    finally:
        cluster.stop()
    assert not (tmp_path / "pki").exists()  # the cluster CA's keys go with it
    if not secrets_before:
        assert not Path("/var/run/secrets").exists()  # the token's mount point too
    assert not any(name.startswith(f"gg-{cid}-") for name in netns_names())
    assert f"ggb{cid}" not in links()
    assert f"gv{cid}" not in links()
    assert not list(network.NETNS_ETC.glob(f"gg-{cid}-*"))
    assert not (network.STATE / f"{cid}.json").exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_leftovers_of_a_killed_cluster_are_swept() -> None:
    if reason := network.usable():
        pytest.skip(f"pod network namespaces are not available here: {reason}")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    cid = os.urandom(2).hex()
    network.STATE.mkdir(parents=True, exist_ok=True)
    (network.STATE / f"{cid}.json").write_text(json.dumps({"pid": int(dead.stdout)}))
    try:
        network.ip("netns", "add", f"gg-{cid}-2")
        network.ip("link", "add", f"ggb{cid}", "type", "bridge")
        (network.NETNS_ETC / f"gg-{cid}-2").mkdir(parents=True)
        network.sweep_dead_clusters()
        assert f"gg-{cid}-2" not in netns_names()
        assert f"ggb{cid}" not in links()
        assert not (network.NETNS_ETC / f"gg-{cid}-2").exists()
        assert not (network.STATE / f"{cid}.json").exists()
    finally:
        network.remove_cluster_leftovers(cid)


def test_host_networking_runs_pods_without_namespaces(tmp_path: Path) -> None:
    out = tmp_path / "out"
    body = {
        "metadata": {"name": "hosted"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "main",
                    "image": "gaggle",
                    "command": ["sh", "-c", f"echo $KUBERNETES_SERVICE_PORT > {out}"],
                }
            ],
        },
    }
    with Cluster(tmp_path / "cluster", network="host") as cluster:
        assert cluster.kubelet is not None
        assert cluster.kubelet.net is None
        create_namespace(cluster, "plain")
        pod = run_pod(cluster, "plain", body, "Succeeded", "Failed")
        assert pod["status"]["phase"] == "Succeeded"
        assert pod["status"]["podIP"] == "127.0.0.1"
        assert cluster.incluster is not None
        assert cluster.incluster.host == "127.0.0.1"  # HTTPS on loopback, no token mount
        port = cluster.incluster.port
    assert out.read_text() == f"{port}\n"


def test_the_cluster_runs_by_hand_until_interrupted(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc"
    command = [sys.executable, "-m", "tests.cluster", "--kubeconfig", str(kubeconfig)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not kubeconfig.exists():
            assert process.poll() is None, "the cluster exited"
            assert time.monotonic() < deadline, "no kubeconfig written"
            time.sleep(0.05)
        assert process.stdout is not None
        assert process.stdout.readline().startswith("local cluster at http://127.0.0.1:")
        if shutil.which("kubectl"):
            got = subprocess.run(
                ["kubectl", "--kubeconfig", str(kubeconfig), "--cache-dir", str(tmp_path / "c"),
                 "get", "namespace", "default", "-o", "name"],
                capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            assert got.stdout == "namespace/default\n", got.stderr
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
        assert process.returncode == 0
        assert "stopped; everything it made is removed" in out
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
