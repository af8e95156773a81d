"""Pod networking like a cluster's, on this machine only: a network namespace per pod.

The cluster makes one Linux bridge (``ggb<id>``) with the address ``10.213.N.1/24``, N picked at
random among the free /24s of the test-only range 10.213.0.0/16 so that parallel clusters do not
collide. Each pod gets a network namespace ``gg-<id>-<n>``, a veth pair (``eth0`` inside,
``gv<id><n>`` on the bridge), the address ``10.213.N.<n>`` and a default route via the bridge.
IP forwarding is left as it is (off here): pods reach each other and the host's bridge address,
nothing beyond.

Name resolution: each pod has its own ``/etc/netns/<netns>/hosts``, which ``ip netns exec`` puts
over ``/etc/hosts`` (and a ``resolv.conf`` without servers over ``/etc/resolv.conf``, so that
other names fail at once instead of timing out). It resolves the pod's own name and every
Service of its namespace (``svc``, ``svc.ns``, ``svc.ns.svc``, ``svc.ns.svc.cluster.local``) to
the IPs of the running pods the Service selects, like a headless Service: a client connects to
the pod's port, so a Service's ``port`` is only honoured where it equals its ``targetPort``.
There are no cluster IPs, no kube-proxy, no DNS server, no NetworkPolicies.

Everything made is named with the cluster's id and recorded in ``/run/gaggle-cluster/<id>.json``
with the owning PID; ``stop()`` removes it all, and a later cluster sweeps what a killed one left.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import shutil
import subprocess
from pathlib import Path

RANGE = "10.213"
STATE = Path("/run/gaggle-cluster")
NETNS_ETC = Path("/etc/netns")


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=20)


def usable() -> str | None:
    """None when pods can have their own network namespaces here, else why not."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, veths, bind mounts)"
    install_iproute2()
    if shutil.which("ip") is None:
        return "needs iproute2 (the `ip` command): apt-get install -y iproute2"
    if shutil.which("unshare") is None:
        return "needs unshare (util-linux)"
    probe = f"gg-probe-{secrets.token_hex(3)}"
    made = ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"cannot create network namespaces: {made.stderr.strip()}"
    ip("netns", "del", probe, check=False)
    return None


def install_iproute2() -> None:
    """The harness installs what it needs: iproute2 via apt-get when `ip` is missing (as root)."""
    if shutil.which("ip") is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], check=False, timeout=300)
        subprocess.run(["apt-get", "install", "-y", "-qq", "iproute2"], check=False, timeout=300)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_cluster_leftovers(cid: str) -> None:
    """Remove every namespace, hosts folder and bridge named for cluster ``cid``."""
    listed = ip("netns", "list", check=False).stdout.split("\n")
    for line in listed:
        name = line.split(" ")[0]
        if name.startswith(f"gg-{cid}-"):
            ip("netns", "del", name, check=False)
    if NETNS_ETC.is_dir():
        for folder in NETNS_ETC.glob(f"gg-{cid}-*"):
            shutil.rmtree(folder, ignore_errors=True)
    ip("link", "del", f"ggb{cid}", check=False)
    (STATE / f"{cid}.json").unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # pods' volume staging folders, once all are gone
        (STATE / "stage").rmdir()


def sweep_dead_clusters() -> None:
    """Clean up after clusters whose process died without tearing down (e.g. a killed pytest)."""
    if not STATE.is_dir():
        return
    for record in STATE.glob("*.json"):
        try:
            owner = json.loads(record.read_text())["pid"]
        except (OSError, ValueError, KeyError):
            continue
        if not _alive(owner):
            remove_cluster_leftovers(record.stem)


class Network:
    def __init__(self) -> None:
        self.cid = secrets.token_hex(2)
        self.bridge = f"ggb{self.cid}"
        self.subnet = ""
        self.host_ip = ""
        self.free = list(range(2, 255))
        self.pods: dict[str, int] = {}  # netns -> host index

    def setup(self) -> None:
        sweep_dead_clusters()
        STATE.mkdir(parents=True, exist_ok=True)
        (STATE / f"{self.cid}.json").write_text(json.dumps({"pid": os.getpid()}))
        taken = ip("-4", "addr").stdout + ip("-4", "route").stdout
        choices = [n for n in range(1, 255) if f"{RANGE}.{n}." not in taken]
        third = random.choice(choices)
        self.subnet = f"{RANGE}.{third}"
        self.host_ip = f"{self.subnet}.1"
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{self.host_ip}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")

    def attach(self) -> tuple[str, str]:
        """A new network namespace wired to the bridge: (netns name, pod IP)."""
        index = self.free.pop(0)
        netns = f"gg-{self.cid}-{index}"
        self.pods[netns] = index
        outside, inside = f"gv{self.cid}{index:02x}", f"gp{self.cid}{index:02x}"
        pod_ip = f"{self.subnet}.{index}"
        ip("netns", "add", netns)
        ip("link", "add", outside, "type", "veth", "peer", "name", inside, "netns", netns)
        ip("link", "set", outside, "master", self.bridge, "up")
        inner = ["netns", "exec", netns, "ip"]
        ip(*inner, "link", "set", inside, "name", "eth0")
        ip(*inner, "addr", "add", f"{pod_ip}/24", "dev", "eth0")
        ip(*inner, "link", "set", "eth0", "up")
        ip(*inner, "link", "set", "lo", "up")
        ip(*inner, "route", "add", "default", "via", self.host_ip)
        (NETNS_ETC / netns).mkdir(parents=True, exist_ok=True)
        # no DNS server: a name not in the hosts file fails at once (the pod's own 127.0.0.1
        # refuses), instead of timing out on the host's resolvers
        (NETNS_ETC / netns / "resolv.conf").write_text("options timeout:1 attempts:1\n")
        self.write_hosts(netns, "")
        return netns, pod_ip

    def write_hosts(self, netns: str, lines: str) -> None:
        """Rewrite a pod's hosts file in place (same inode: running pods see the change)."""
        base = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        path = NETNS_ETC / netns / "hosts"
        if path.parent.is_dir():
            with path.open("w") as hosts:
                hosts.write(base + lines)

    def detach(self, netns: str) -> None:
        index = self.pods.pop(netns, None)
        ip("netns", "del", netns, check=False)  # takes its veth pair with it
        shutil.rmtree(NETNS_ETC / netns, ignore_errors=True)
        if index is not None:
            self.free.append(index)

    def teardown(self) -> None:
        for netns in list(self.pods):
            self.detach(netns)
        remove_cluster_leftovers(self.cid)

    def command(self, netns: str, argv: list[str]) -> list[str]:
        """``argv`` run inside the pod's network namespace and a private mount namespace."""
        return [
            "ip",
            "netns",
            "exec",
            netns,
            "unshare",
            "--mount",
            "--propagation",
            "private",
            *argv,
        ]
