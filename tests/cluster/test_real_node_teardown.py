"""A real cluster cleans up after itself: stopping it ends containerd, the kubelet, kube-proxy, the
shims and the pods, and removes every mount, namespace, link, cgroup, nft table and file it made
outside its workdir (and the workdir's mounts); a later cluster sweeps what a killed one left; a
start that fails says why and leaves nothing either."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import binaries, network
from tests.cluster.cluster import Cluster
from tests.cluster.node import NODE
from tests.cluster.realnode import host, netns
from tests.cluster.realnode import kubelet as kubelet_module
from tests.cluster.test_real_node import toolbox
from tests.conftest import ROOT

pytestmark = pytest.mark.timeout(300)

SLEEPER = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "sleeper", "namespace": "default"},
    "spec": {
        "nodeName": NODE,
        "terminationGracePeriodSeconds": 30,  # not waited for: the node kills, it does not drain
        "containers": [
            {
                "name": "main",
                "image": "TOOLBOX",
                "command": ["sleep", "3600"],
                "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
            }
        ],
        "volumes": [{"name": "scratch", "emptyDir": {"medium": "Memory"}}],
    },
}
SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "sleeper", "namespace": "default"},
    "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]},
}


def alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def shared_before() -> dict[str, bool]:
    return {str(folder): folder.exists() for folder in host.SHARED}


def node_state(cid: str, workdir: Path) -> dict[str, Any]:
    """What of cluster ``cid``'s node is on the host now, found independently of ``host``."""
    mounts = [
        line.split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.split()[4].startswith(f"{workdir}/")
    ]
    cgroup_dirs = [p for p in Path("/sys/fs/cgroup").glob(f"*/gaggle-{cid}")]
    logs, results = Path("/var/log/containers"), Path("/var/lib/cni/results")
    symlinks = [p for p in _listing(logs) if str(p.resolve()).startswith(f"{workdir}/")]
    cni = [p for p in _listing(results) if str(workdir) in p.read_text()]
    shim_pids = [
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and "containerd-shim" in _cmdline(p) and f"{workdir}/" in _cmdline(p)
    ]
    return {
        "mounts": mounts,
        "cgroups": cgroup_dirs,
        "container log links": symlinks,
        "cni results": cni,
        "shims": shim_pids,
        "netns": [n for n in network.ip("netns", "list").stdout.split() if n == f"gn{cid}"],
        "links": [
            name
            for name in (f"gh{cid}", f"ggb{cid}")
            if network.ip("link", "show", name, check=False).returncode == 0
        ],
        "record": (network.STATE / f"{cid}.json").exists(),
    }


def _listing(folder: Path) -> list[Path]:
    return list(folder.iterdir()) if folder.is_dir() else []


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def assert_gone(cid: str, workdir: Path, pids: list[int], before: dict[str, bool]) -> None:
    state = node_state(cid, workdir)
    assert not any(state.values()), state
    assert not [pid for pid in pids if alive(pid)]
    records = [json.loads(p.read_text()) for p in network.STATE.glob("*.json")]
    others = [r for r in records if r.get("node") == "real" and alive(r["pid"])]
    if not others:  # the shared folders no node had found go with the last real node
        now = shared_before()
        assert [folder for folder, was in before.items() if now[folder] and not was] == []
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == "0\n"


def wait_running(kubeconfig: Path, name: str) -> None:
    deadline = time.monotonic() + 120
    while True:
        done = subprocess.run(
            [str(binaries.BIN / "kubectl"), "--kubeconfig", str(kubeconfig), "get", "pod", name,
             "-o", "jsonpath={.status.phase}"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        if done.stdout == "Running":
            return
        assert time.monotonic() < deadline, f"{name} did not start: {done.stderr}"
        time.sleep(0.2)


def test_stopping_a_real_cluster_removes_all_it_made() -> None:
    before = shared_before()
    workdir = Path(tempfile.mkdtemp(prefix="gaggle-cluster-"))
    cluster = Cluster(workdir, node="real")
    try:
        cluster.start(timeout=120)
        assert cluster.real is not None
        cid = cluster.net.cid
        sleeper = json.loads(json.dumps(SLEEPER).replace("TOOLBOX", toolbox(cluster)))
        cluster.kubectl("apply", "-f", "-", input=json.dumps(sleeper))
        cluster.kubectl("apply", "-f", "-", input=json.dumps(SERVICE))
        wait_running(cluster.kubeconfig, "sleeper")
        pids = [pid for pid, _ in cluster.net.processes]
        state = node_state(cid, workdir)
        pids += state["shims"]
        assert len(pids) == 5 + 3 + len(state["shims"])  # control plane + CoreDNS, the node's
        assert all(alive(pid) for pid in pids)
        assert state["shims"]
        assert state["mounts"]  # the pod's rootfs, its tmpfs volume, its netns, ...
        assert len(state["cgroups"]) >= 8
        assert state["container log links"]
        assert state["netns"]
        assert state["links"] == [f"gh{cid}", f"ggb{cid}"]
        deadline = time.monotonic() + 60
        while "table ip kube-proxy" not in netns.run(cid, "nft", "list", "tables").stdout:
            assert time.monotonic() < deadline, "kube-proxy made no table in the node's netns"
            time.sleep(0.2)
    finally:
        cluster.stop()
    assert_gone(cid, workdir, pids, before)
    cluster.stop()  # again: nothing to do, no error
    subprocess.run(["rm", "-rf", str(workdir)], check=False)


KEEP_RUNNING = """
import json, sys, tempfile
from pathlib import Path
from tests.cluster.cluster import Cluster

cluster = Cluster(Path(tempfile.mkdtemp(prefix="gaggle-cluster-")), node="real").start(120)
pod = sys.argv[1].replace("TOOLBOX", cluster.real.toolbox.name)
cluster.kubectl("apply", "-f", "-", input=pod)
print(cluster.net.cid, cluster.workdir, cluster.kubeconfig, flush=True)
sys.stdin.read()  # until killed
"""


def test_a_killed_real_clusters_leftovers_are_swept_by_the_next() -> None:
    before = shared_before()
    process = subprocess.Popen(
        [sys.executable, "-c", KEEP_RUNNING, json.dumps(SLEEPER)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        cid, folder, kubeconfig = process.stdout.readline().split()
        workdir = Path(folder)
        wait_running(Path(kubeconfig), "sleeper")
        record = json.loads((network.STATE / f"{cid}.json").read_text())
        assert record["node"] == "real"
        pids = [pid for pid, _ in record["processes"]] + node_state(cid, workdir)["shims"]
    finally:
        process.kill()  # as a killed pytest would be: no teardown at all
        process.wait()
    assert all(alive(pid) for pid in pids)  # the node outlived it
    assert node_state(cid, workdir)["mounts"]
    network.sweep_dead_clusters()
    assert_gone(cid, workdir, pids, before)
    assert not workdir.exists()


def test_a_failed_start_says_why_and_leaves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    before = shared_before()
    real_config = kubelet_module.config

    def broken(*args: Any) -> dict[str, object]:
        return {**real_config(*args), "failCgroupV1": True}  # 1.37's default: refuse v1

    monkeypatch.setattr(kubelet_module, "config", broken)
    workdir = Path(tempfile.mkdtemp(prefix="gaggle-cluster-"))
    cluster = Cluster(workdir, node="real")
    with pytest.raises(RuntimeError) as failed:
        cluster.start(timeout=120)
    assert "kubelet exited" in str(failed.value)
    assert "cgroup v1" in str(failed.value)  # the kubelet's own reason, in its last lines
    pids = [pid for pid, _ in cluster.net.processes]
    assert len(pids) == 5 + 3
    assert_gone(cluster.net.cid, workdir, pids, before)
    cluster.stop()
    subprocess.run(["rm", "-rf", str(workdir)], check=False)
