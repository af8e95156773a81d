"""Everything the real node touches outside its workdir, and how it goes away.

Per cluster (named with its id, removed by ``remove``):

- the processes: containerd, the kubelet and kube-proxy are recorded with ``Network.started``
  (network.py ends them); the runc shims containerd starts are found by their command line,
  which names this cluster's containerd socket; the pods' processes by their cgroups;
- the mounts under the workdir: the kubelet's bind mount of its root dir and the pods' volumes,
  containerd's rootfs overlays and pod network namespaces (``netns_mounts_under_state_dir``);
- the node's network namespace and the host's end of its veth pair (``netns``): kube-proxy's
  tables, the kubelet's and kube-router's chains, the guard table and the namespace's forwarding
  switch go with it; kube-router's lock in /run/gaggle-cluster (``policy``), if its owner died;
- the cgroup root ``/gaggle-<id>`` in every hierarchy (``cgroups``);
- its files in folders the kubelet and libcni hard-code: the container log symlinks in
  /var/log/containers (those pointing into the workdir) and the CNI results in
  /var/lib/cni/results (named for this cluster's network, or naming a pod namespace of its).

Shared by every real node of the machine (``SHARED``): the folders above and
/var/lib/kubelet/device-plugins, where each kubelet rewrites the same ``kubelet.sock``. Before
a node starts, ``prepare`` notes (in /run/gaggle-cluster/shared-paths) which of them did not
exist yet; the last real node of the machine to go removes those that are empty, and the
device-plugin files, and restores the mode the kubelet sets on /var/log/containers.

``remove`` is idempotent and bounded in time; network.py calls it for a cluster whose process
died (``sweep_dead_clusters``), before it deletes the workdir.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.cluster import network
from tests.cluster.realnode import cgroups, cni, netns, policy

CONTAINER_LOGS = Path("/var/log/containers")
CNI_RESULTS = Path("/var/lib/cni/results")
DEVICE_PLUGINS = Path("/var/lib/kubelet/device-plugins")
SHARED = (CONTAINER_LOGS, CNI_RESULTS, CNI_RESULTS.parent, DEVICE_PLUGINS, DEVICE_PLUGINS.parent)
RECORD = network.STATE / "shared-paths"  # JSON; not *.json, which are clusters
MNT_DETACH = 2


@contextlib.contextmanager
def _locked() -> Iterator[dict[str, Any]]:
    """The machine-wide record of shared folders, read and written under a lock."""
    network.STATE.mkdir(parents=True, exist_ok=True)
    with (network.STATE / "host.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        record = _read(RECORD)
        record.setdefault("created", [])
        record.setdefault("modes", {})
        yield record
        RECORD.write_text(json.dumps(record))


def _read(path: Path) -> dict[str, Any]:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def prepare() -> None:
    """Note which shared folders do not exist yet (a node is about to make them)."""
    with _locked() as record:
        for folder in SHARED:
            if not folder.exists() and str(folder) not in record["created"]:
                record["created"].append(str(folder))
            elif folder == CONTAINER_LOGS and str(folder) not in record["created"]:
                record["modes"].setdefault(str(folder), CONTAINER_LOGS.stat().st_mode & 0o7777)


def _other_real_nodes(cid: str) -> list[str]:
    """The ids of other clusters with a real node whose process still runs."""
    others = []
    for path in network.STATE.glob("*.json"):
        record = _read(path)
        pid = record.get("pid")
        mine = path.stem == cid
        if (
            not mine
            and record.get("node") == "real"
            and isinstance(pid, int)
            and network._alive(pid)
        ):
            others.append(path.stem)
    return others


def shims(workdir: Path) -> list[int]:
    """The PIDs of the runc shims of the containerd whose socket is in ``workdir``."""
    marker = f"{workdir}/containerd/"
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "containerd-shim" in command and marker in command:
            found.append(int(proc.name))
    return found


def mounts_under(folder: Path) -> list[str]:
    """Mount points at or below ``folder``, deepest first."""
    inside = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")  # \040 is a space
        if point == str(folder) or point.startswith(f"{folder}/"):
            inside.append(point)
    return sorted(set(inside), key=lambda p: -p.count("/"))


def unmount_all(folder: Path, timeout: float = 10) -> list[str]:
    """Unmount everything at or below ``folder`` (lazily when busy); what stayed."""
    libc = ctypes.CDLL(None, use_errno=True)
    deadline = time.monotonic() + timeout
    while (points := mounts_under(folder)) and time.monotonic() < deadline:
        for point in points:
            if libc.umount2(point.encode(), 0) != 0:
                libc.umount2(point.encode(), MNT_DETACH)
    return mounts_under(folder)


def kill(pids: list[int], timeout: float = 10) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while any(network._running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def remove(cid: str, workdir: Path | None) -> list[str]:
    """Remove everything of cluster ``cid``'s node outside its workdir (and its mounts in it);
    returns what could not be removed (empty when all went)."""
    left = []
    if workdir is not None:
        kill(shims(workdir))
    left += cgroups.remove(cid)
    if workdir is not None:
        left += [f"mount {point}" for point in unmount_all(workdir)]
    policy.sweep_netns(netns.name(cid))  # a killed cluster's kube-router lock (else: none)
    netns.remove(cid)
    if workdir is not None and CONTAINER_LOGS.is_dir():
        for link in CONTAINER_LOGS.iterdir():
            with contextlib.suppress(OSError):
                if link.is_symlink() and os.readlink(link).startswith(f"{workdir}/"):
                    link.unlink()
    if CNI_RESULTS.is_dir():
        for result in CNI_RESULTS.iterdir():
            ours = result.name.startswith(f"{cni.network_name(cid)}-")
            with contextlib.suppress(OSError):  # or a pod netns of ours named in it
                ours = ours or (workdir is not None and f'"{workdir}/' in result.read_text())
            if ours:
                result.unlink(missing_ok=True)
    if not _other_real_nodes(cid):
        left += _remove_shared()
    return left


def _remove_shared() -> list[str]:
    """With no real node left on the machine: the device-plugin files, and the shared folders
    no node had before, if empty."""
    left = []
    with _locked() as record:
        if DEVICE_PLUGINS.is_dir():
            for name in ("kubelet.sock", "kubelet_internal_checkpoint"):
                (DEVICE_PLUGINS / name).unlink(missing_ok=True)
        for folder in sorted(record["created"], key=lambda p: -p.count("/")):
            try:
                Path(folder).rmdir()
            except FileNotFoundError:
                pass
            except OSError as error:
                left.append(f"{folder}: {error}")
                continue
            record["created"].remove(folder)
        for folder, mode in list(record["modes"].items()):
            with contextlib.suppress(FileNotFoundError):
                Path(folder).chmod(mode)
            del record["modes"][folder]
    return left
