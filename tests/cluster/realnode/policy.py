"""NetworkPolicy on the real node, enforced by a real implementation: kube-router's firewall
(network policy) controller, v2.1.0, run alone (``--run-firewall`` only: no routing, no proxy),
in the node's network namespace (``gn<id>``, where the pods' bridge, the kubelet and kube-proxy
are: realnode/netns.py).

What it makes there, all in the ``filter`` table (through ``iptables``, Debian's nft backend)
and in ipsets, read off its source (pkg/controllers/netpol):

- chains ``KUBE-ROUTER-INPUT``/``-FORWARD``/``-OUTPUT``, jumped to from rule 1 of ``INPUT``,
  ``FORWARD`` and ``OUTPUT``; ``KUBE-NWPLCY-DEFAULT``; a ``KUBE-POD-FW-<hash>`` chain per pod of
  this node (by ``status.hostIP`` = the Node's InternalIP) and a ``KUBE-NWPLCY-<hash>`` chain
  per policy, renamed at every sync; pod-to-pod traffic on the bridge is caught with ``-m
  physdev --physdev-is-bridged``, so ``net.bridge.bridge-nf-call-iptables`` must be 1 there
  (checked, never set);
- ipsets ``KUBE-SRC-<hash>``/``KUBE-DST-<hash>`` (peers, ipBlocks, named ports) and, during a
  sync, ``TMP-<hash>``; its ipset restore rewrites every set of the namespace (none other here);
- no sysctl, file or process beyond its own (routing and proxy controllers, which set sysctls,
  are off); no listening port (health and metrics are disabled).

What a test sees of it: a packet no policy admits is REJECTed (``icmp-port-unreachable``: the
sender sees "connection refused" at once, not a timeout); rules follow changes asynchronously, a
sync after each watched change; traffic from the node itself (``--src-type LOCAL``: the
kubelet's probes, from the node's address ``.2``) always passes, and so do replies (conntrack
ESTABLISHED); the host (``host_ip``) is another machine to it, as the API server's host is in a
production cluster. The pods' IPv6 addresses, if
they have any, are not policed (``--enable-ipv6`` needs an IPv6 InternalIP on the Node).

Its chain and ipset names are fixed (no prefix option), and each sync deletes every
``KUBE-POD-FW-``/``KUBE-NWPLCY-`` chain and ``KUBE-SRC-``/``KUBE-DST-`` set it did not make:
two controllers in one network namespace would delete each other's rules. Each cluster's node
has its own namespace, so clusters do not meet; within one, a lock
(``/run/gaggle-cluster/kube-router-<netns>.lock``, held by kube-router's process too) refuses a
second controller, and ``sweep`` ends the controller of a killed test and removes its rules.
``--cleanup-config`` is not used: in v2.1.0 it removes nothing of the firewall's (it cleans an
empty controller), flushes every IPVS service of the machine and then panics (nil pointer in the
proxy's cleanup); ``remove_host_state`` does the firewall's part.

Security: advisories are reported against kube-router v2.1.0 (the only version the Go module
proxy serves). It is a test-only component here, on a closed machine, reading the API with a
read-only identity (``RBAC``), never exposed on the network.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from tests.cluster import binaries
from tests.cluster.controlplane import ControlPlane

STATE = Path("/run/gaggle-cluster")  # network.STATE: where the clusters' records live
GUARD = STATE / "kube-router.guard"  # one starter, stopper or sweeper at a time
NETNS = Path("/run/netns")
USER = "system:gaggle-kube-router"
CHAINS = ("KUBE-ROUTER-", "KUBE-POD-FW-", "KUBE-NWPLCY-")
SETS = re.compile(r"^(inet6:)?(KUBE-SRC-|KUBE-DST-|TMP-)[A-Z2-7]{16}$")
BRIDGE_CALLS_IPTABLES = "/proc/sys/net/bridge/bridge-nf-call-iptables"
# the commands it runs (and we do) and their Debian packages
TOOLS = {
    "iptables": "iptables",
    "iptables-save": "iptables",
    "ipset": "ipset",
    "nft": "nftables",
    "nsenter": "util-linux",
}

# Read-only: what its informers watch (it starts them all, whatever runs) and the Node it reads.
RBAC = f"""\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: "gaggle:kube-router"}}
rules:
- apiGroups: [""]
  resources: [namespaces, pods, services, endpoints, nodes]
  verbs: [get, list, watch]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: "gaggle:kube-router"}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "gaggle:kube-router"}}
subjects:
- {{apiGroup: rbac.authorization.k8s.io, kind: User, name: "{USER}"}}
"""


class PolicyError(RuntimeError):
    """The controller cannot start (another one runs, a tool or a sysctl is missing)."""


def install_tools() -> None:
    """apt-get the missing TOOLS' packages (as network.install_tools does for the node's)."""
    wanted = sorted({pkg for command, pkg in TOOLS.items() if shutil.which(command) is None})
    if wanted and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", *wanted], check=False, timeout=600)
    missing = [command for command in TOOLS if shutil.which(command) is None]
    if missing:
        packages = " ".join(sorted({TOOLS[c] for c in missing}))
        raise PolicyError(f"kube-router needs {', '.join(missing)}: apt-get install {packages}")


def grant(control: ControlPlane) -> Path:
    """The controller's kubeconfig: a client certificate for USER from the cluster's CA, and the
    read-only RBAC it needs applied as cluster-admin."""
    assert control.pki is not None
    kubectl = [str(binaries.BIN / "kubectl"), "--kubeconfig", str(control.kubeconfig)]
    done = subprocess.run(
        [*kubectl, "apply", "-f", "-"], input=RBAC, capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        raise PolicyError(f"applying kube-router's RBAC failed: {done.stderr.strip()}")
    pair = control.pki.issue("kube-router", USER)
    return control.write_kubeconfig(control.workdir / "kube-router.kubeconfig", pair)


def _inside(netns: str) -> list[str]:
    return ["nsenter", f"--net={NETNS / netns}", "--"]


def _exists(netns: str) -> bool:
    return (NETNS / netns).exists()


def _run(netns: str, *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_inside(netns), *argv], input=stdin, capture_output=True, text=True, timeout=30
    )


def _ours(chain: str) -> bool:
    return chain.startswith(CHAINS)


def host_state(netns: str) -> list[str]:
    """What of kube-router's is in ``netns``: iptables chains (v4 and v6 filter tables) and
    ipsets, by name."""
    if not _exists(netns):
        return []
    found = []
    for save in ("iptables-save", "ip6tables-save"):
        if shutil.which(save) is None:
            continue
        for line in _run(netns, save, "-t", "filter").stdout.splitlines():
            if line.startswith(":") and _ours(line[1:].split(" ")[0]):
                found.append(f"{save}: chain {line[1:].split(' ')[0]}")
    if shutil.which("ipset") is not None:
        listed = _run(netns, "ipset", "list", "-n").stdout.split()
        found += [f"ipset {name}" for name in listed if SETS.match(name)]
    return found


def remove_host_state(netns: str) -> list[str]:
    """Remove kube-router's rules, chains and ipsets from ``netns`` (it must not run): the jumps
    into its chains from the built-in ones, then its chains, in one iptables-restore --noflush
    transaction that leaves every other rule alone (the kubelet's, kube-proxy's); then its
    ipsets, no longer referenced. Returns the errors."""
    if not _exists(netns):
        return []
    errors = []
    for family in ("iptables", "ip6tables"):
        if shutil.which(f"{family}-restore") is None:
            continue
        saved = _run(netns, f"{family}-save", "-t", "filter").stdout.splitlines()
        chains = [line[1:].split(" ")[0] for line in saved if line.startswith(":")]
        mine = [chain for chain in chains if _ours(chain)]
        if not mine:
            continue
        jumps = [
            "-D" + line[2:]
            for line in saved
            if line.startswith("-A ")
            and not _ours(line.split(" ")[1])
            and any(f"-j {chain} " in f"{line} " for chain in mine)
        ]
        script = [*jumps, *(f"-F {c}" for c in mine), *(f"-X {c}" for c in mine)]
        restore = "\n".join(["*filter", *script, "COMMIT", ""])
        done = _run(netns, f"{family}-restore", "--noflush", stdin=restore)
        if done.returncode != 0:
            errors.append(f"{family}-restore: {done.stderr.strip()}")
    if shutil.which("ipset") is not None:
        for name in _run(netns, "ipset", "list", "-n").stdout.split():
            if SETS.match(name):
                done = _run(netns, "ipset", "destroy", name)
                if done.returncode != 0:
                    errors.append(f"ipset destroy {name}: {done.stderr.strip()}")
    return errors


def _lock_path(netns: str) -> Path:
    return STATE / f"kube-router-{netns}.lock"


def _read_record(path: Path) -> dict[str, Any]:
    try:
        found = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _alive(pid: int) -> bool:
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def _end(pid: int, binary: str, grace: float = 10) -> None:
    """SIGTERM, then SIGKILL, ``pid`` while it still runs ``binary`` (not a reused PID)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            if binary not in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                return
            os.kill(pid, sig)
        except OSError:
            return
        deadline = time.monotonic() + grace
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not _alive(pid):
            return


@contextlib.contextmanager
def _guarded() -> Iterator[None]:
    """One starter, stopper or sweeper at a time (a sweep must not remove a new one's rules)."""
    STATE.mkdir(parents=True, exist_ok=True)
    with GUARD.open("a") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        yield


def _sweep(path: Path, keep: bool = False) -> bool:
    """True when no live owner is recorded in ``path`` any more: a dead one's kube-router is
    ended, what it made removed and, unless ``keep`` (the caller holds the lock and writes its
    own record next), the record too."""
    record = _read_record(path)
    owner = record.get("owner")
    if not isinstance(owner, int):
        return True
    if _alive(owner):
        return False
    pid = record.get("pid")
    if isinstance(pid, int):
        _end(pid, str(record.get("binary", "kube-router")))
    remove_host_state(str(record.get("netns", "")))
    if not keep:
        path.unlink(missing_ok=True)
    return True


def sweep_netns(netns: str) -> None:
    """The controller of ``netns`` if its owner is dead (a killed cluster's, swept with the
    cluster: ``host.remove``): ended, its rules and its lock removed."""
    with _guarded():
        _sweep(_lock_path(netns))


def sweep() -> None:
    """The controllers of killed tests: for each lock whose owner is dead, end its kube-router
    and remove what it made (a cluster's sweep may call this at any time)."""
    with _guarded():
        for path in STATE.glob("kube-router-*.lock"):
            _sweep(path)


class PolicyController:
    """kube-router's firewall controller for the node of one cluster.

    ``kubeconfig``: its identity (``grant``); ``node_name``: the Node it enforces for (its
    InternalIP picks the pods); ``service_range``: the cluster's Service CIDR (it lets traffic to
    ClusterIPs through INPUT); ``netns``: the node's network namespace (in /run/netns), where
    the pods' bridge is. Its log: ``<workdir>/logs/kube-router.log``.
    """

    def __init__(
        self, kubeconfig: Path, node_name: str, service_range: str, workdir: Path, netns: str
    ) -> None:
        self.kubeconfig, self.node_name = kubeconfig, node_name
        self.service_range, self.workdir, self.netns = service_range, workdir, netns
        self.binary = binaries.BIN / "kube-router"
        self.log = workdir / "logs" / "kube-router.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._lock: IO[str] | None = None

    def host_state(self) -> list[str]:
        return host_state(self.netns)

    def start(self, timeout: float = 60) -> PolicyController:
        """Take the namespace's lock, start kube-router, return once its first sync is done."""
        if self.process is not None:
            return self
        install_tools()
        if not _exists(self.netns):
            raise PolicyError(f"no network namespace {self.netns} (in {NETNS})")
        calls = _run(self.netns, "cat", BRIDGE_CALLS_IPTABLES).stdout.strip()
        if calls != "1":
            raise PolicyError(
                f"{BRIDGE_CALLS_IPTABLES} is {calls or 'missing'} in {self.netns}: traffic "
                "between pods on the bridge would bypass iptables, and the policies with it"
            )
        with _guarded():
            self._take_lock()
        try:
            self._start(time.monotonic() + timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _take_lock(self) -> None:
        path = _lock_path(self.netns)
        for _ in range(2):  # the second time after sweeping a dead owner's
            lock = path.open("a+")
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                if _sweep(path):
                    continue
                record = _read_record(path)
                raise PolicyError(
                    f"kube-router already runs in {self.netns} (pid {record.get('pid')}, started "
                    f"by pid {record.get('owner')} for {record.get('workdir')}): its iptables "
                    "chains and ipsets have fixed names, so two would delete each other's rules. "
                    "One NetworkPolicy controller per node: stop the other first."
                ) from None
            _sweep(path, keep=True)  # a dead owner's orphan is gone, its rules may remain
            self._lock = lock
            return
        raise PolicyError(f"{path}: held by a process that a sweep could not end")

    def _write_record(self, record: dict[str, Any]) -> None:
        assert self._lock is not None
        self._lock.seek(0)
        self._lock.truncate()
        self._lock.write(json.dumps(record))
        self._lock.flush()

    def _start(self, deadline: float) -> None:
        assert self._lock is not None
        self.log.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "owner": os.getpid(),
            "binary": str(self.binary),
            "workdir": str(self.workdir),
            "netns": self.netns,
        }
        self._write_record(record)
        argv = [
            *_inside(self.netns),
            str(self.binary),
            "--run-firewall=true",
            "--run-router=false",
            "--run-service-proxy=false",
            f"--kubeconfig={self.kubeconfig}",
            f"--hostname-override={self.node_name}",
            f"--service-cluster-ip-range={self.service_range}",
            "--health-port=0",  # else it listens on every address
            "--metrics-port=0",
            "--v=1",  # one line per sync: `sync iptables took`
        ]
        started = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                pass_fds=(self._lock.fileno(),),  # the lock lives as long as kube-router does
                env={**os.environ, "NODE_NAME": self.node_name},  # read before the hostname
            )
        self._write_record({**record, "pid": self.process.pid})  # nsenter execs it: same pid
        while "sync iptables took" not in (log := self._read_log(started)):
            if self.process.poll() is not None:
                raise PolicyError(f"kube-router exited ({self.process.returncode}):\n{self.tail()}")
            if time.monotonic() > deadline:
                raise PolicyError(f"kube-router did not finish its first sync:\n{self.tail()}")
            time.sleep(0.1)
        if "Aborting sync" in log:
            raise PolicyError(f"kube-router's first sync failed:\n{self.tail()}")

    def _read_log(self, offset: int = 0) -> str:
        try:
            with self.log.open("rb") as log:
                log.seek(offset)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self._read_log().splitlines()[-lines:])

    def errors(self) -> list[str]:
        """klog's error and fatal lines so far (an aborted sync, a failed iptables-restore)."""
        return [line for line in self._read_log().splitlines() if line[:1] in ("E", "F")]

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, grace: float = 10) -> None:
        """End kube-router and remove every chain, rule and ipset it made; bounded, idempotent."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        lock, self._lock = self._lock, None
        if lock is None:
            return
        try:
            with _guarded():
                remove_host_state(self.netns)
                _lock_path(self.netns).unlink(missing_ok=True)
        finally:
            lock.close()
