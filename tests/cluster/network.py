"""Pod networking like a cluster's, on this machine only: a network namespace per pod.

The cluster takes two free /24s of the test-only range 10.213.0.0/16 (so that parallel clusters
do not collide): one for pods, one for Services. One Linux bridge (``ggb<id>``) holds the first
address of the pod range (``host_ip``, where the node, the API server and the cluster DNS
listen); each pod gets a network namespace ``gg-<id>-<n>``, a veth pair (``eth0`` inside,
``gv<id><n>`` on the bridge), the address ``10.213.P.<n>`` and a default route via the bridge.
IP forwarding is left as it is (off here), and the whole Service range has a ``prohibit`` route
on the host: a packet to a Service address that no rule of the service proxy (``services``) has
translated is refused on the host, never routed off the machine. There is no NAT towards any
other interface.

Each pod also gets an IPv6 address, ``fd67:<id>::<n>`` (the bridge holds ``fd67:<id>::1``), on
the same link. The cluster is single-stack IPv4 as the API server sees it (``podIP`` and the
Services are v4; no kubelet we know reports both unless the cluster is dual-stack): the v6
address is there so that a test can show what an IPv6-only cluster would reach (``pod_ipv6``).

Each pod's ``/etc/netns/<netns>/`` holds what a kubelet writes for a container, and ``ip netns
exec`` puts it over ``/etc``: a ``resolv.conf`` naming the cluster DNS with the search path
``<ns>.svc.cluster.local svc.cluster.local cluster.local`` and ``ndots:5`` (dnsPolicy
ClusterFirst; ``None`` takes the pod's dnsConfig), and a ``hosts`` file with localhost, the
pod's IP and hostname (with its subdomain's FQDN) and its hostAliases; and, standing in for the
image's, the host's ``passwd`` and ``group`` with our image's user (gaggle, uid 10001) added.

Everything made is named with the cluster's id and recorded in ``/run/gaggle-cluster/<id>.json``
with the owning PID and the PIDs of the processes the cluster started; ``teardown()`` removes it
all, and a later cluster sweeps what a killed one left (processes only when their command line
still names the cluster's binaries: a PID can be reused).
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
# what our Dockerfile's `useradd --uid 10001 … gaggle` adds to the image's /etc
IMAGE_ACCOUNTS = {
    "passwd": "gaggle:x:10001:10001::/tmp:/usr/sbin/nologin\n",
    "group": "gaggle:x:10001:\n",
}
STATE = Path("/run/gaggle-cluster")
NETNS_ETC = Path("/etc/netns")


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=20)


# the commands the node needs, and the Debian package of each
TOOLS = {
    "ip": "iproute2",
    "nft": "nftables",
    "unshare": "util-linux",
    "setpriv": "util-linux",
    "openssl": "openssl",
}


def usable() -> str | None:
    """None when pods can have their own network namespaces here, else why not."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, veths, bind mounts, running pods as their user)"
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
    """Remove every namespace, hosts folder, route and bridge named for cluster ``cid``, and
    end the processes it recorded that still run its binaries."""
    record = _read(STATE / f"{cid}.json")
    ended = [int(pid) for pid, marker in record.get("processes", []) if _end(int(pid), str(marker))]
    deadline = time.monotonic() + 10  # a SIGKILLed process takes a moment to go
    while any(_running(pid) for pid in ended) and time.monotonic() < deadline:
        time.sleep(0.05)
    if record.get("node") == "real":  # its host state, before its workdir (mounts) goes
        from tests.cluster.realnode import host

        host.remove(cid, Path(record["workdir"]) if record.get("workdir") else None)
    listed = ip("netns", "list", check=False).stdout.split("\n")
    for line in listed:
        name = line.split(" ")[0]
        if name.startswith(f"gg-{cid}-"):
            for pid in ip("netns", "pids", name, check=False).stdout.split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)  # a pod's process: in our namespace
            ip("netns", "del", name, check=False)
    if NETNS_ETC.is_dir():
        for folder in NETNS_ETC.glob(f"gg-{cid}-*"):
            shutil.rmtree(folder, ignore_errors=True)
    ip("link", "del", f"ggb{cid}", check=False)
    if record.get("services"):
        ip("route", "del", "prohibit", record["services"], check=False)
    if record.get("workdir") and Path(record["workdir"]).name.startswith("gaggle-"):
        shutil.rmtree(record["workdir"], ignore_errors=True)
    shutil.rmtree(STATE / "stage" / cid, ignore_errors=True)
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
        self.free = list(range(2, 255))
        self.pods: dict[str, int] = {}  # netns -> host index
        self.processes: list[tuple[int, str]] = []
        self.workdir = ""  # the cluster's folder, removed by a sweep after a killed cluster
        self.extra: dict[str, Any] = {}  # more for the record (note)

    @property
    def stage(self) -> Path:
        """The cluster's staging folder for pods' bind mounts (outside /tmp)."""
        return STATE / "stage" / self.cid

    @property
    def ipv6_prefix(self) -> str:
        """The pods' IPv6 network (a unique-local /64 named for the cluster), ending in ``::``."""
        return f"fd67:{self.cid}::"

    def pod_ipv6(self, pod_ip: str) -> str:
        """The IPv6 address of the pod whose (v4) IP this is."""
        return f"{self.ipv6_prefix}{int(pod_ip.rsplit('.', 1)[1]):x}"

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
        # A set address pins it: else the bridge takes its lowest port's, so each new pod's
        # veth could change the gateway's MAC under the running pods, whose ARP caches then
        # send to a dead address for up to a minute (seen: the operator's API calls hung).
        ip("link", "set", self.bridge, "address", f"02:67:67:{self.cid[:2]}:{self.cid[2:]}:01")
        ip("addr", "add", f"{self.host_ip}/24", "dev", self.bridge)
        ip("addr", "add", f"{self.ipv6_prefix}1/64", "dev", self.bridge, "nodad")
        ip("link", "set", self.bridge, "up")
        # a Service address no rule translates is refused here, never routed anywhere
        ip("route", "add", "prohibit", self.service_range)

    def attach(self, pod: dict[str, Any], dns_ip: str) -> tuple[str, str]:
        """A new network namespace wired to the bridge, with the pod's resolv.conf and hosts
        file: (netns name, pod IP)."""
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
        ip(*inner, "addr", "add", f"{self.ipv6_prefix}{index:x}/64", "dev", "eth0", "nodad")
        etc = NETNS_ETC / netns
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text(resolv_conf(pod, dns_ip))
        (etc / "hosts").write_text(hosts_file(pod, pod_ip))
        for name, line in IMAGE_ACCOUNTS.items():  # the image's own users (its useradd line)
            host = Path("/etc") / name
            text = host.read_text() if host.exists() else ""
            (etc / name).write_text(text + ("" if text.endswith("\n") or not text else "\n") + line)
        return netns, pod_ip

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


def resolv_conf(pod: dict[str, Any], dns_ip: str) -> str:
    """What a kubelet writes for dnsPolicy ClusterFirst (and None, from the pod's dnsConfig)."""
    namespace = pod["metadata"]["namespace"]
    spec = pod.get("spec", {})
    config = spec.get("dnsConfig") or {}
    if spec.get("dnsPolicy") == "None":
        servers, search = config.get("nameservers") or [], config.get("searches") or []
        options: list[str] = []
    else:
        servers = [dns_ip, *(config.get("nameservers") or [])]
        search = [
            f"{namespace}.svc.cluster.local",
            "svc.cluster.local",
            "cluster.local",
            *(config.get("searches") or []),
        ]
        options = ["ndots:5"]
    for option in config.get("options") or []:
        value = option.get("value")
        options.append(f"{option['name']}:{value}" if value else option["name"])
    lines = [f"search {' '.join(search)}"] if search else []
    lines += [f"nameserver {server}" for server in servers]
    lines += [f"options {' '.join(options)}"] if options else []
    return "\n".join(lines) + "\n"


def hosts_file(pod: dict[str, Any], pod_ip: str) -> str:
    """The kubelet-managed hosts file: localhost, the pod's own names, its hostAliases."""
    meta, spec = pod["metadata"], pod.get("spec", {})
    hostname = spec.get("hostname") or meta["name"]
    names = hostname
    if spec.get("subdomain"):
        fqdn = f"{hostname}.{spec['subdomain']}.{meta['namespace']}.svc.cluster.local"
        names = f"{fqdn}\t{hostname}"
    lines = [
        "# Kubernetes-managed hosts file.",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "fe00::0\tip6-localnet",
        "fe00::1\tip6-allnodes",
        "fe00::2\tip6-allrouters",
        f"{pod_ip}\t{names}",
    ]
    for alias in spec.get("hostAliases") or []:
        lines.append(f"{alias['ip']}\t{' '.join(alias.get('hostnames') or [])}")
    return "\n".join(lines) + "\n"
