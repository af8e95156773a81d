"""The test cluster cleans up after itself: stopping it ends the control plane, CoreDNS,
containerd, the kubelet, kube-proxy, kube-router, the shims and the pods, and removes every
mount, namespace, link, route, cgroup, nft table and file it made outside its workdir (and the
workdir's mounts); a later cluster sweeps what a killed one left; a start that fails says why and
leaves nothing either; by hand (``python -m tests.cluster``) it runs, with the project's image
loaded, until interrupted."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from gaggle._version import __version__
from tests.cluster import binaries, network
from tests.cluster.cluster import Cluster
from tests.cluster.realnode import NODE, host, netns
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


def node_state(cid: str, workdir: Path, services: str = "") -> dict[str, Any]:
    """What of cluster ``cid`` (Service range ``services``) is on the host now, found
    independently of ``host`` and ``network``."""
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
        "routes": [
            line
            for line in network.ip("route", "show", "type", "prohibit").stdout.splitlines()
            if services and line.split()[1] == services
        ],
        "record": (network.STATE / f"{cid}.json").exists(),
        "policy lock": (network.STATE / f"kube-router-gn{cid}.lock").exists(),
    }


def _listing(folder: Path) -> list[Path]:
    return list(folder.iterdir()) if folder.is_dir() else []


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def assert_gone(
    cid: str, workdir: Path, pids: list[int], before: dict[str, bool], services: str = ""
) -> None:
    state = node_state(cid, workdir, services)
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
    cluster = Cluster(workdir)
    try:
        cluster.start(timeout=120)
        assert cluster.real is not None
        cid, services = cluster.net.cid, cluster.net.service_range
        sleeper = json.loads(json.dumps(SLEEPER).replace("TOOLBOX", toolbox(cluster)))
        cluster.kubectl("apply", "-f", "-", input=json.dumps(sleeper))
        cluster.kubectl("apply", "-f", "-", input=json.dumps(SERVICE))
        wait_running(cluster.kubeconfig, "sleeper")
        pids = [pid for pid, _ in cluster.net.processes]
        state = node_state(cid, workdir, services)
        pids += state["shims"]
        # the control plane + CoreDNS; containerd, the kubelet, kube-proxy, kube-router
        assert len(pids) == 5 + 4 + len(state["shims"])
        assert all(alive(pid) for pid in pids)
        assert state["shims"]
        assert state["mounts"]  # the pod's rootfs, its tmpfs volume, its netns, ...
        assert len(state["cgroups"]) >= 8
        assert state["container log links"]
        assert state["netns"]
        assert state["links"] == [f"gh{cid}", f"ggb{cid}"]
        assert state["routes"]  # the Service range, refused on the host
        assert state["policy lock"]  # kube-router's, held while it runs
        deadline = time.monotonic() + 60
        while "table ip kube-proxy" not in netns.run(cid, "nft", "list", "tables").stdout:
            assert time.monotonic() < deadline, "kube-proxy made no table in the node's netns"
            time.sleep(0.2)
    finally:
        cluster.stop()
    assert_gone(cid, workdir, pids, before, services)
    cluster.stop()  # again: nothing to do, no error
    subprocess.run(["rm", "-rf", str(workdir)], check=False)


KEEP_RUNNING = """
import json, sys, tempfile
from pathlib import Path
from tests.cluster.cluster import Cluster

cluster = Cluster(Path(tempfile.mkdtemp(prefix="gaggle-cluster-"))).start(120)
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
    assert node_state(cid, workdir, record["services"])["routes"]
    assert node_state(cid, workdir)["mounts"]
    assert node_state(cid, workdir)["policy lock"]
    network.sweep_dead_clusters()
    assert_gone(cid, workdir, pids, before, record["services"])
    assert not workdir.exists()


def test_a_failed_start_says_why_and_leaves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    before = shared_before()
    real_config = kubelet_module.config

    def broken(*args: Any) -> dict[str, object]:
        return {**real_config(*args), "failCgroupV1": True}  # 1.37's default: refuse v1

    monkeypatch.setattr(kubelet_module, "config", broken)
    workdir = Path(tempfile.mkdtemp(prefix="gaggle-cluster-"))
    cluster = Cluster(workdir)
    with pytest.raises(RuntimeError) as failed:
        cluster.start(timeout=120)
    assert "kubelet exited" in str(failed.value)
    assert "cgroup v1" in str(failed.value)  # the kubelet's own reason, in its last lines
    pids = [pid for pid, _ in cluster.net.processes]
    assert len(pids) == 5 + 3
    assert_gone(cluster.net.cid, workdir, pids, before)
    cluster.stop()
    subprocess.run(["rm", "-rf", str(workdir)], check=False)


def test_the_cluster_runs_by_hand_with_the_image_until_interrupted(tmp_path: Path) -> None:
    before = shared_before()
    kubeconfig = tmp_path / "kc"
    command = [sys.executable, "-m", "tests.cluster", "--kubeconfig", str(kubeconfig)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        said: list[str] = []
        while not said or said[-1] != "Ctrl-C to stop\n":  # bounded by the test's timeout
            said.append(process.stdout.readline())
            assert said[-1], f"it exited {process.wait()} after saying {said}"
        assert said[0].startswith("cluster at https://10.213.")
        assert kubeconfig.exists()
        host_ip = said[1].split()[-1]
        (image_line,) = [line for line in said if line.startswith("image ")]
        image = image_line.split()[1]
        tag = image.rsplit(":", 1)[1]
        assert image == f"localhost/gaggle:{tag}"
        assert "--set image.registry=localhost --set image.repository=gaggle " in image_line
        assert image_line.endswith(f"--set image.tag={tag}\n")
        # the cluster is the one whose bridge holds the printed address
        (bridge,) = network.ip("-o", "addr", "show", "to", host_ip).stdout.split()[1:2]
        cid = bridge.removeprefix("ggb")
        record = json.loads((network.STATE / f"{cid}.json").read_text())
        workdir = Path(record["workdir"])

        kubectl = [str(binaries.BIN / "kubectl"), "--kubeconfig", str(kubeconfig),
                   "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
        run = [*kubectl, "run", "version", f"--image={image}", "--restart=Never", "--", "--version"]
        subprocess.run(run, check=True, capture_output=True, timeout=30)
        deadline = time.monotonic() + 120

        def phase() -> str:
            jsonpath = ["-o", "jsonpath={.status.phase}"]
            got = subprocess.run([*kubectl, "get", "pod", "version", *jsonpath],
                                 capture_output=True, text=True, timeout=30)  # fmt: skip
            return got.stdout

        while phase() not in ("Succeeded", "Failed"):
            assert time.monotonic() < deadline, f"the image's pod is still {phase()!r}"
            time.sleep(0.2)
        logs = subprocess.run([*kubectl, "logs", "version"], capture_output=True, text=True,
                              timeout=30)  # fmt: skip
        assert (phase(), logs.stdout) == ("Succeeded", f"gaggle {__version__}\n")

        pids = [pid for pid, _ in record["processes"]] + node_state(cid, workdir)["shims"]
        assert all(alive(pid) for pid in pids)
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 0
        assert out.endswith("stopped; everything it made is removed\n")
        assert not kubeconfig.exists()
        assert_gone(cid, workdir, pids, before, record["services"])
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
