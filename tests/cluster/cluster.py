"""The test cluster as one object: the real control plane, CoreDNS, our node, its service proxy
and its NetworkPolicy agent.

    cluster = Cluster(workdir)          # Cluster(workdir, admission=("OwnerReferences…",))
    cluster.start()                     # ≤ 30 s once the binaries are built
    ...                                 # kubectl --kubeconfig cluster.kubeconfig ...
    cluster.stop()                      # ends every process, removes namespaces, veths, routes

``start`` needs root (network namespaces, running pods as their user) and Go (the binaries are
built on first use, see ``binaries``); without them it raises with the reason. The API server
listens on the bridge address (``url``); ``kubeconfig`` is cluster-admin; ``kubeconfig_for``
acts as anybody; ``requests_by`` reads the audit log. The node, the service proxy and the policy
agent run on an event loop in a thread of this process; etcd, the Kubernetes components and
CoreDNS are child processes, recorded so that a later cluster ends them if this process is
killed.

``Cluster(workdir, node="real")`` has the real node instead of ours: kubelet, containerd, runc,
the CNI bridge and kube-proxy (``realnode``); ``load_image(archive)`` imports an image into it.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from tests.cluster import binaries, dns, network
from tests.cluster.client import Client
from tests.cluster.controlplane import Component, ControlPlane, free_port
from tests.cluster.kubelet import Kubelet
from tests.cluster.netpol import Agent
from tests.cluster.network import Network
from tests.cluster.node import NODE
from tests.cluster.realnode import RealNode
from tests.cluster.services import ServiceProxy

T = TypeVar("T")


class Cluster:
    def __init__(
        self,
        workdir: Path,
        venv_bin: Path | None = None,
        admission: tuple[str, ...] = (),
        node: str = "emulated",
    ) -> None:
        if node not in ("emulated", "real"):
            raise ValueError(f"node: {node!r} is not one of 'emulated', 'real'")
        self.node_kind = node
        self.real: RealNode | None = None  # the real node, when node="real"
        self.workdir = workdir
        self.venv_bin = venv_bin or Path(sys.executable).parent
        self.admission = admission
        self.net = Network()
        self.control: ControlPlane | None = None
        self.coredns: Component | None = None
        self.kubelet: Kubelet | None = None
        self.proxy: ServiceProxy | None = None
        self.policy: Agent | None = None
        self.loop = asyncio.new_event_loop()
        self.thread: threading.Thread | None = None
        self._clients: list[Client] = []

    # -- what tests use --------------------------------------------------------------------------

    @property
    def kubeconfig(self) -> Path:
        assert self.control is not None
        return self.control.kubeconfig

    @property
    def url(self) -> str:
        assert self.control is not None
        return self.control.url

    @property
    def host_ip(self) -> str:
        """Where pods reach the host (the bridge's address)."""
        return self.net.host_ip

    def kubeconfig_for(
        self, user: str, groups: tuple[str, ...] = (), namespace: str = "default"
    ) -> Path:
        assert self.control is not None
        return self.control.kubeconfig_for(user, groups, namespace)

    def write_kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        """The cluster-admin kubeconfig with another default namespace, at ``path``."""
        assert self.control is not None
        assert self.control.admin is not None
        return self.control.write_kubeconfig(path, self.control.admin, namespace)

    def requests_by(self, namespace: str, serviceaccount: str) -> list[tuple[str, str, int]]:
        assert self.control is not None
        return self.control.requests_by(namespace, serviceaccount)

    def kubectl(self, *args: str, input: str | None = None) -> str:
        """Real kubectl as cluster-admin; its output (raises with stderr on failure)."""
        done = subprocess.run(
            [str(binaries.BIN / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    # -- life cycle ------------------------------------------------------------------------------

    def start(self, timeout: float = 60) -> Cluster:
        why = network.usable()
        if why is not None:
            raise RuntimeError(f"the test cluster {why}")
        binaries.ensure()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.workdir.chmod(0o755)  # pods run as uid 10001 and read their volumes under it
        try:
            self._start(time.monotonic() + timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, deadline: float) -> None:
        self.net.workdir = str(self.workdir)
        self.net.setup()
        control = self.control = ControlPlane(
            self.workdir,
            self.net.host_ip,
            self.net.service_range,
            self.net.service_ip(1),
            admission=self.admission,
        )
        control.start(timeout=max(deadline - time.monotonic(), 1))
        for component in control.components:
            assert component.process is not None
            self.net.started(component.process.pid, str(binaries.BIN))
        assert control.pki is not None
        pki = control.pki
        self.kubectl("apply", "-f", "-", input=dns.objects(self.net.service_ip(10), self.host_ip))
        coredns_kubeconfig = control.write_kubeconfig(
            self.workdir / "coredns.kubeconfig", pki.issue("coredns", "system:coredns")
        )
        self.coredns = dns.component(
            self.workdir,
            self.host_ip,
            coredns_kubeconfig,
            free_port(self.host_ip),
            free_port(self.host_ip),
        )
        self.coredns.start()
        assert self.coredns.process is not None
        self.net.started(self.coredns.process.pid, str(binaries.BIN))
        if self.node_kind == "real":
            self.real = RealNode(self.workdir, self.net, control)
            self.real.start(deadline)
            self._wait_ready(deadline)
            return
        node = pki.issue("node", f"system:node:{NODE}", ("system:nodes",))
        proxy = pki.issue("kube-proxy", "system:kube-proxy")
        agent = pki.issue("policy-agent", "system:gaggle-policy-agent", ("system:masters",))
        serving = pki.issue("kubelet", NODE, server_ips=(self.host_ip,), server_names=(NODE,))
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="gaggle-node", daemon=True
        )
        self.thread.start()

        async def up() -> None:
            node_client = self._client(node.cert, node.key)
            self.proxy = ServiceProxy(
                self._client(proxy.cert, proxy.key), self.net.service_range, self._namespaces
            )
            await self.proxy.start()
            self.policy = Agent(
                self._client(agent.cert, agent.key),
                (self.host_ip, f"{self.net.ipv6_prefix}1"),
                self._netns_of,
                lambda ip: (ip, self.net.pod_ipv6(ip)),
            )
            await self.policy.start()
            self.kubelet = Kubelet(
                node_client,
                self.net,
                self.workdir / "pods",
                self.venv_bin,
                serving,
                pki.ca,
                self.net.service_ip(10),
            )
            self.kubelet.on_attach.append(self.proxy.attach)
            self.kubelet.on_attach.append(self.policy.attach)
            await self.kubelet.start()

        self.run(up(), timeout=max(deadline - time.monotonic(), 1))
        self._wait_ready(deadline)

    def _client(self, cert: Path, key: Path) -> Client:
        assert self.control is not None
        assert self.control.pki is not None
        client = Client(self.url, self.control.pki.ca, cert, key)
        self._clients.append(client)
        return client

    def _namespaces(self) -> list[str]:
        return list(self.net.pods)

    def _netns_of(self, pod_ip: str) -> str | None:
        """The network namespace holding this pod IP now (network.attach names it so)."""
        name = f"gg-{self.net.cid}-{pod_ip.rsplit('.', 1)[1]}"
        return name if name in self.net.pods else None

    def _wait_ready(self, deadline: float) -> None:
        """Until the node is Ready, the default ServiceAccount exists and DNS answers."""
        while True:
            try:
                ready = self.kubectl(
                    "get",
                    "node",
                    NODE,
                    "-o",
                    "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
                )
                account = self.kubectl("get", "serviceaccount", "default", "-o", "name")
                if ready == "True" and account and self._dns_answers():
                    return
            except RuntimeError:
                pass
            failed = self.control.failed() if self.control else None
            if failed:
                raise RuntimeError(failed)
            if self.coredns is not None and self.coredns.exited() is not None:
                raise RuntimeError(f"coredns exited:\n{self.coredns.tail()}")
            if self.real is not None and (why := self.real.failed()):
                raise RuntimeError(why)
            if time.monotonic() > deadline:
                raise RuntimeError(
                    "the test cluster did not become ready (node, default ServiceAccount, DNS)"
                )
            time.sleep(0.2)

    def _dns_answers(self) -> bool:
        import socket

        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.settimeout(0.5)
                # a standard query for kubernetes.default.svc.cluster.local A
                name = (
                    b"".join(
                        bytes([len(p)]) + p
                        for p in b"kubernetes.default.svc.cluster.local".split(b".")
                    )
                    + b"\0"
                )
                probe.sendto(
                    b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
                    + name
                    + b"\x00\x01\x00\x01",
                    (self.host_ip, 53),
                )
                answer = probe.recv(512)
                return answer[:2] == b"\x12\x34" and answer[3] & 0x0F == 0 and answer[7] > 0
        except OSError:
            return False

    def stop(self) -> None:
        """End everything this cluster started; safe to call twice and after a failed start."""
        if self.thread is not None and self.loop.is_running():

            async def down() -> None:
                if self.kubelet is not None:
                    await self.kubelet.stop()
                if self.proxy is not None:
                    await self.proxy.stop()
                if self.policy is not None:
                    await self.policy.stop()
                for client in self._clients:
                    await client.close()

            try:
                self.run(down(), timeout=60)
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self.thread.join(10)
                self.thread = None
        try:
            if self.real is not None:
                self.real.stop()
        finally:
            if self.coredns is not None:
                self.coredns.stop()
            if self.control is not None:
                self.control.stop()
            self.net.teardown()

    def load_image(self, archive: Path) -> list[str]:
        """Import an image archive (OCI layout or docker-archive) into the real node; the
        image names it brought."""
        if self.real is None:
            raise RuntimeError("load_image needs a started Cluster(..., node='real')")
        return self.real.load_image(archive)

    # -- helpers ---------------------------------------------------------------------------------

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run ``coroutine`` on the node's loop and return its result."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(timeout)

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
