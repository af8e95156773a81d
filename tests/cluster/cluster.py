"""The test cluster as one object: the real control plane, CoreDNS and the real node (kubelet,
containerd, runc, the CNI bridge, kube-proxy and kube-router's policy controller: ``realnode``).

    cluster = Cluster(workdir)          # Cluster(workdir, admission=("OwnerReferences…",))
    cluster.start()                     # ~10 s once the binaries are built
    cluster.load_image(archive)         # an image archive into the node's containerd
    ...                                 # kubectl --kubeconfig cluster.kubeconfig ...
    cluster.stop()                      # ends every process, removes namespaces, links, mounts

``start`` needs root (network namespaces, cgroups, mounts) and Go (the binaries are built on
first use, see ``binaries``); without them it raises with the reason. The API server and CoreDNS
listen on the bridge address (``host_ip``, where pods reach the host; ``url``); ``kubeconfig`` is
cluster-admin; ``kubeconfig_for`` acts as anybody; ``requests_by`` reads the audit log. Every
process is a child process, recorded (``network``) so that a later cluster ends it, and removes
what the node left, if this process is killed.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from tests.cluster import binaries, dns, network
from tests.cluster.controlplane import Component, ControlPlane, free_port
from tests.cluster.network import Network
from tests.cluster.realnode import NODE, RealNode


class Cluster:
    def __init__(self, workdir: Path, admission: tuple[str, ...] = ()) -> None:
        self.workdir = workdir
        self.admission = admission
        self.net = Network()
        self.control: ControlPlane | None = None
        self.coredns: Component | None = None
        self.real: RealNode | None = None  # the node, once the control plane is up
        self.image = ""  # the project's image in the node, once loaded (the session fixture)

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

    def start(self, timeout: float = 120) -> Cluster:
        why = network.usable()
        if why is not None:
            raise RuntimeError(f"the test cluster {why}")
        binaries.ensure()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.workdir.chmod(0o755)  # as a node's /var/lib (mkdtemp makes it 0700)
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
        self.real = RealNode(self.workdir, self.net, control)
        self.real.start(deadline)
        self._wait_ready(deadline)
        self.real.enforce_policies(NODE)

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
        """Import an image archive (OCI layout or docker-archive) into the node; the image
        names it brought."""
        if self.real is None:
            raise RuntimeError("load_image needs a started Cluster")
        return self.real.load_image(archive)

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
