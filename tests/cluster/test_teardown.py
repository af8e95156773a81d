"""The test cluster cleans up after itself: stopping it ends every process it started (the control
plane's, CoreDNS, the pods') and removes every network namespace, veth, bridge, route, mount point
and file it made; a later cluster sweeps what a killed one left; by hand it runs until
interrupted. Also: a test can turn on more admission plugins."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.cluster import binaries, network
from tests.cluster.cluster import Cluster
from tests.conftest import ROOT

pytestmark = pytest.mark.timeout(180)

SLEEPER = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "sleeper"},
    "spec": {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 2,
        "containers": [{"name": "main", "image": "gaggle", "command": ["sleep", "600"]}],
    },
}


def links() -> str:
    return network.ip("link", "show", check=False).stdout


def routes() -> str:
    return network.ip("route", "show", "type", "prohibit", check=False).stdout


def netns_names() -> list[str]:
    return [line.split(" ")[0] for line in network.ip("netns", "list").stdout.splitlines()]


def alive(pid: int) -> bool:
    """Running, not a zombie (an orphan's zombie waits for its new parent to reap it)."""
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def wait_for_pod(cluster: Cluster, namespace: str) -> None:
    deadline = time.monotonic() + 40
    while (
        cluster.kubectl("get", "pod", "sleeper", "-n", namespace, "-o", "jsonpath={.status.phase}")
        != "Running"
    ):
        assert time.monotonic() < deadline, "the pod did not start"
        time.sleep(0.1)


def test_stopping_the_cluster_ends_everything_and_removes_its_network() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="gaggle-teardown-"))
    cluster = Cluster(workdir, admission=("OwnerReferencesPermissionEnforcement",))
    try:
        cluster.start()
        cid, net = cluster.net.cid, cluster.net
        cluster.kubectl("create", "namespace", "doomed")
        cluster.kubectl("apply", "-n", "doomed", "-f", "-", input=json.dumps(SLEEPER))
        wait_for_pod(cluster, "doomed")
        assert cluster.kubelet is not None
        run = next(iter(cluster.kubelet.runs.values()))
        pod_pid = run.processes["main"].pid
        pids = [pid for pid, _ in net.processes]
        assert len(pids) == 5  # etcd, apiserver, controller-manager, scheduler, CoreDNS
        assert all(alive(pid) for pid in [*pids, pod_pid])
        assert run.netns in netns_names()
        assert f"ggb{cid}" in links()
        assert net.service_range in routes()
        assert (network.NETNS_ETC / run.netns / "resolv.conf").exists()

        # the extra admission plugin is on: an edit user cannot block its owner's deletion
        cluster.kubectl(
            "create", "rolebinding", "-n", "doomed", "e", "--clusterrole=edit", "--user=eve"
        )
        eve = cluster.kubeconfig_for("eve", namespace="doomed")
        cluster.kubectl("create", "configmap", "-n", "doomed", "owner")
        uid = json.loads(
            cluster.kubectl("get", "configmap", "-n", "doomed", "owner", "-o", "json")
        )["metadata"]["uid"]
        owned = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "owned",
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "name": "owner",
                        "uid": uid,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
        }
        refused = subprocess.run(
            [str(binaries.BIN / "kubectl"), "--kubeconfig", str(eve), "apply", "-f", "-"],
            input=json.dumps(owned),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert refused.returncode != 0
        assert "cannot set blockOwnerDeletion" in refused.stderr
    finally:
        cluster.stop()
    assert not any(alive(pid) for pid in [*pids, pod_pid])
    assert not any(name.startswith(f"gg-{cid}-") for name in netns_names())
    assert f"ggb{cid}" not in links()
    assert f"gv{cid}" not in links()
    assert net.service_range not in routes()
    assert not list(network.NETNS_ETC.glob(f"gg-{cid}-*"))
    assert not (network.STATE / f"{cid}.json").exists()
    subprocess.run(["rm", "-rf", str(workdir)], check=False)


def start_by_hand(kubeconfig: Path) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "tests.cluster", "--kubeconfig", str(kubeconfig)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while not kubeconfig.exists():
        assert process.poll() is None, "the cluster exited"
        assert time.monotonic() < deadline, "no kubeconfig written"
        time.sleep(0.1)
    return process


def records() -> set[str]:
    return {p.stem for p in network.STATE.glob("*.json")} if network.STATE.is_dir() else set()


def test_the_cluster_runs_by_hand_until_interrupted(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc"
    before = records()
    process = start_by_hand(kubeconfig)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("cluster at https://10.213.")
        got = subprocess.run(
            [
                str(binaries.BIN / "kubectl"),
                "--kubeconfig",
                str(kubeconfig),
                "--cache-dir",
                str(tmp_path / "c"),
                "get",
                "namespace",
                "default",
                "-o",
                "name",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert got.stdout == "namespace/default\n", got.stderr
        (mine,) = records() - before
        pids = [
            pid for pid, _ in json.loads((network.STATE / f"{mine}.json").read_text())["processes"]
        ]
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=60)
        assert process.returncode == 0
        assert "stopped; everything it made is removed" in out
        assert not kubeconfig.exists()
        assert not any(alive(pid) for pid in pids)
        assert mine not in records()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_leftovers_of_a_killed_cluster_are_swept_by_the_next(tmp_path: Path) -> None:
    before = records()
    process = start_by_hand(tmp_path / "kc")
    (mine,) = records() - before
    record = json.loads((network.STATE / f"{mine}.json").read_text())
    process.kill()  # as a killed pytest would be: no teardown at all
    process.wait()
    pids = [pid for pid, _ in record["processes"]]
    assert any(alive(pid) for pid in pids)  # its control plane outlived it
    assert f"ggb{mine}" in links()
    network.sweep_dead_clusters()
    assert not any(alive(pid) for pid in pids)
    assert f"ggb{mine}" not in links()
    assert record["services"] not in routes()
    assert mine not in records()
