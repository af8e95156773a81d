"""The node's cgroup root, ``/gaggle-<id>`` in every hierarchy: where the kubelet puts its pods.

This machine has cgroup v1 (one hierarchy per controller, plus the named ``systemd`` one and
cgroup2 at /sys/fs/cgroup/unified), and PID 1 is not systemd, so the kubelet and containerd use
the cgroupfs driver (as a production node on cgroup v1 without systemd would). The kubelet's
``cgroupRoot`` must exist before it starts: ``create`` makes it in each hierarchy (cpuset's
``cpus``/``mems`` copied from the parent, else no task could join). Below it the kubelet makes
``kubepods/{burstable,besteffort}/pod<uid>/<container id>``; ``container`` finds a container's
folder in one controller (a test reads ``cpu.stat`` or ``memory.*`` there). ``remove`` kills
every process left in the tree (pods of a killed cluster) and removes the folders bottom-up.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")


def hierarchies() -> list[Path]:
    """The mount point of every cgroup hierarchy (v1 and v2)."""
    found = []
    for line in MOUNTINFO.read_text().splitlines():
        fields = line.split()
        fstype = fields[fields.index("-") + 1]
        if fstype in ("cgroup", "cgroup2"):
            found.append(Path(fields[4]))
    return found


def name(cid: str) -> str:
    return f"gaggle-{cid}"


def create(cid: str) -> None:
    for root in hierarchies():
        folder = root / name(cid)
        folder.mkdir(exist_ok=True)
        for setting in ("cpuset.cpus", "cpuset.mems"):
            if (root / setting).exists():
                (folder / setting).write_text((root / setting).read_text())


def container(cid: str, controller: str, container_id: str) -> Path | None:
    """The folder of container ``container_id`` (without ``containerd://``) in ``controller``."""
    base = Path("/sys/fs/cgroup") / controller / name(cid)
    return next((p for p in _tree(base) if p.name == container_id), None)


def _tree(top: Path) -> list[Path]:
    """``top`` and every folder below it, deepest first (os.walk: a folder removed meanwhile,
    by the kubelet or another cluster's sweep, is skipped, not an error)."""
    return [Path(folder) for folder, _, _ in os.walk(top, topdown=False)]


def processes(cid: str) -> set[int]:
    pids: set[int] = set()
    for root in hierarchies():
        for folder in _tree(root / name(cid)):
            with contextlib.suppress(OSError):
                pids |= {int(pid) for pid in (folder / "cgroup.procs").read_text().split()}
    return pids


def remove(cid: str, timeout: float = 20) -> list[str]:
    """Kill what still runs in the tree, then remove it bottom-up; what could not go."""
    deadline = time.monotonic() + timeout
    while (pids := processes(cid)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    left = []
    for root in hierarchies():
        for folder in _tree(root / name(cid)):
            while True:
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as error:  # busy a moment after its last task died
                    if time.monotonic() > deadline:
                        left.append(f"{folder}: {error}")
                        break
                    time.sleep(0.05)
    return left
