"""The cluster's network on this machine: its address ranges, its bridge, and its record.

The cluster takes two free /24s of the test-only range 10.213.0.0/16 (so that parallel clusters
do not collide): one for pods, one for Services. One Linux bridge (``ggb<id>``) holds the first
address of the pod range (``host_ip``, where the API server and the cluster DNS listen, and where
pods reach the host); the node joins it from a network namespace of its own (``realnode.netns``:
``.2`` is the node, pods get ``.10`` up). IP forwarding on the host is left as it is (off here),
and the whole Service range has a ``prohibit`` route on the host: a Service address is
translated only inside the node, so from the host it is refused, never routed off the machine.
There is no NAT towards any other interface.

Everything made is named with the cluster's id and recorded in ``/run/gaggle-cluster/<id>.json``
with the owning PID, the PIDs of the processes the cluster started and its workdir;
``teardown()`` removes it all, and a later cluster sweeps what a killed one left (processes only
when their command line still names the cluster's binaries or workdir: a PID can be reused; the
node's state outside its workdir with ``realnode.host``).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

RANGE = "10.213"
STATE = Path("/run/gaggle-cluster")


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=20)


# the commands the cluster needs (the node checks its own: realnode.node), and their packages
TOOLS = {
    "ip": "iproute2",
    "nft": "nftables",
    "openssl": "openssl",
}


def usable() -> str | None:
    """None when the cluster can make its bridge and the node's network namespace, else why not."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, bridges, cgroups, mounts)"
    install_tools()
    for command, package in TOOLS.items():
        if shutil.which(command) is None:
            return f"needs the `{command}` command: apt-get install -y {package}"
    probe = f"gg-probe-{secrets.token_hex(3)}"
    made = ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"cannot create network namespaces: {made.stderr.strip()}"
    ip("netns", "del", probe, check=False)
    return None


def install_tools() -> None:
    """The harness installs what it needs: the missing TOOLS' packages via apt-get (as root)."""
    wanted = sorted({pkg for command, pkg in TOOLS.items() if shutil.which(command) is None})
    if wanted and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], check=False, timeout=300)
        subprocess.run(["apt-get", "install", "-y", "-qq", *wanted], check=False, timeout=600)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_cluster_leftovers(cid: str) -> None:
    """End the processes cluster ``cid`` recorded that still run its binaries, remove what its
    node left (``realnode.host``), its bridge, route, workdir and record."""
    record = _read(STATE / f"{cid}.json")
    ended = [int(pid) for pid, marker in record.get("processes", []) if _end(int(pid), str(marker))]
    deadline = time.monotonic() + 10  # a SIGKILLed process takes a moment to go
    while any(_running(pid) for pid in ended) and time.monotonic() < deadline:
        time.sleep(0.05)
    if record.get("node") == "real":  # its host state, before its workdir (mounts) goes
        from tests.cluster.realnode import host  # realnode imports this module

        host.remove(cid, Path(record["workdir"]) if record.get("workdir") else None)
    ip("link", "del", f"ggb{cid}", check=False)
    if record.get("services"):
        ip("route", "del", "prohibit", record["services"], check=False)
    if record.get("workdir") and Path(record["workdir"]).name.startswith("gaggle-"):
        shutil.rmtree(record["workdir"], ignore_errors=True)
    (STATE / f"{cid}.json").unlink(missing_ok=True)


def _read(path: Path) -> dict[str, Any]:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _end(pid: int, marker: str) -> bool:
    """SIGKILL ``pid`` if it still runs a command naming ``marker`` (not a reused PID)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    if marker not in command:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return True


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie is its new parent's to reap)."""
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def sweep_dead_clusters() -> None:
    """Clean up after clusters whose process died without tearing down (e.g. a killed pytest)."""
    if not STATE.is_dir():
        return
    for record in STATE.glob("*.json"):
        owner = _read(record).get("pid")
        if isinstance(owner, int) and not _alive(owner):
            remove_cluster_leftovers(record.stem)


class Network:
    def __init__(self) -> None:
        self.cid = secrets.token_hex(2)
        self.bridge = f"ggb{self.cid}"
        self.subnet = ""
        self.host_ip = ""
        self.service_range = ""
        self.processes: list[tuple[int, str]] = []
        self.workdir = ""  # the cluster's folder, removed by a sweep after a killed cluster
        self.extra: dict[str, Any] = {}  # more for the record (note)

    def service_ip(self, last: int) -> str:
        return self.service_range.rsplit(".", 1)[0] + f".{last}"

    def _record(self) -> None:
        record = {
            "pid": os.getpid(),
            "services": self.service_range,
            "processes": self.processes,
            "workdir": self.workdir,
            **self.extra,
        }
        (STATE / f"{self.cid}.json").write_text(json.dumps(record))

    def note(self, key: str, value: Any) -> None:
        """Record more about the cluster (e.g. ``node: real``) for a later sweep."""
        self.extra[key] = value
        self._record()

    def started(self, pid: int, marker: str) -> None:
        """Record a process the cluster started, so that a later sweep can end it."""
        self.processes.append((pid, marker))
        self._record()

    def setup(self) -> None:
        sweep_dead_clusters()
        STATE.mkdir(parents=True, exist_ok=True)
        taken = ip("-4", "addr").stdout + ip("-4", "route").stdout
        choices = [n for n in range(1, 255) if f"{RANGE}.{n}." not in taken]
        pods, services = random.sample(choices, 2)
        self.subnet = f"{RANGE}.{pods}"
        self.host_ip = f"{self.subnet}.1"
        self.service_range = f"{RANGE}.{services}.0/24"
        self._record()
        ip("link", "add", self.bridge, "type", "bridge")
        # A set address pins it: else the bridge takes its lowest port's, which can change
        # under the pods' ARP caches, who then send to a dead address for up to a minute.
        ip("link", "set", self.bridge, "address", f"02:67:67:{self.cid[:2]}:{self.cid[2:]}:01")
        ip("addr", "add", f"{self.host_ip}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        # Service addresses are translated in the node only: here one is refused, not routed
        ip("route", "add", "prohibit", self.service_range)

    def teardown(self) -> None:
        remove_cluster_leftovers(self.cid)
