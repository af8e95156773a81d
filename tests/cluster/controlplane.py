"""The real Kubernetes control plane, configured as kubeadm would, on this machine only.

``ControlPlane.start()`` runs, from the binaries ``binaries`` built:

- etcd on loopback (two free ports, its data in the workdir, no fsync: a test cluster);
- kube-apiserver on the cluster's bridge address (pods and the host both reach it there), TLS from
  the cluster CA (``pki``), client certificates and ServiceAccount tokens as authenticators,
  ``--authorization-mode=Node,RBAC``, the default admission plugins plus NodeRestriction and any a
  test asks for (``admission=("OwnerReferencesPermissionEnforcement",)``), an audit log of every
  request (``requests_by`` reads it back: who did what), and the given Service address range;
- kube-controller-manager with its default controllers (garbage collector, namespace,
  serviceaccount, token, replicaset, deployment, job, endpointslice, resourcequota, root CA
  publisher, node lifecycle, …), each with its own ServiceAccount credentials as in kubeadm;
- kube-scheduler.

Each runs as a child process of ours, its output in ``<workdir>/logs/<name>.log`` (shown when it
fails to come up); ``stop()`` ends them by their PIDs, SIGTERM then SIGKILL.
``kubeconfig_for(user, groups)`` writes a kubeconfig with a client certificate for anybody.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.cluster import binaries
from tests.cluster.pki import NAMES, Pair, Pki

ADMIN = "gaggle-admin"
ISSUER = "https://kubernetes.default.svc.cluster.local"

AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
"""

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: gaggle-local
  cluster:
    server: {server}
    certificate-authority: {ca}
users:
- name: {user}
  user:
    client-certificate: {cert}
    client-key: {key}
contexts:
- name: gaggle-local
  context:
    cluster: gaggle-local
    user: {user}
    namespace: {namespace}
current-context: gaggle-local
"""


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@dataclass
class Component:
    name: str
    argv: list[str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, grace: float = 10) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)  # its own group: it was started as leader
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


@dataclass
class ControlPlane:
    workdir: Path
    address: str  # where the API server listens and is advertised (the bridge address)
    service_range: str  # e.g. 10.213.7.0/24
    service_ip: str  # the `kubernetes` Service's ClusterIP (first of the range)
    admission: tuple[str, ...] = ()
    node_name: str = "gaggle-node"
    components: list[Component] = field(default_factory=list)
    pki: Pki | None = None
    admin: Pair | None = None  # the cluster-admin's client certificate
    port: int = 0

    @property
    def url(self) -> str:
        return f"https://{self.address}:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        """The cluster-admin kubeconfig (user gaggle-admin in system:masters)."""
        return self.workdir / "admin.kubeconfig"

    @property
    def audit_log(self) -> Path:
        return self.workdir / "logs" / "audit.log"

    def start(self, timeout: float = 60) -> None:
        folder = binaries.ensure()
        logs = self.workdir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.pki = pki = Pki(self.workdir / "pki")
        self.port = free_port(self.address)  # before the kubeconfigs, which name it
        serving = pki.issue(
            "apiserver",
            "kube-apiserver",
            server_ips=(self.address, self.service_ip, "127.0.0.1"),
            server_names=NAMES,
        )
        to_kubelet = pki.issue("apiserver-kubelet-client", "kube-apiserver", ("system:masters",))
        # the aggregation layer's front proxy, as kubeadm sets it up (its CA is ours here)
        front = pki.issue("front-proxy-client", "front-proxy-client")
        self.admin = pki.issue("admin", ADMIN, ("system:masters",))
        self.write_kubeconfig(self.kubeconfig, self.admin)
        kcm = self.write_kubeconfig(
            self.workdir / "kcm.kubeconfig", pki.issue("kcm", "system:kube-controller-manager")
        )
        scheduler = self.write_kubeconfig(
            self.workdir / "scheduler.kubeconfig", pki.issue("scheduler", "system:kube-scheduler")
        )
        (self.workdir / "audit-policy.yaml").write_text(AUDIT_POLICY)
        etcd_url = f"http://127.0.0.1:{free_port('127.0.0.1')}"
        peer_url = f"http://127.0.0.1:{free_port('127.0.0.1')}"
        etcd = {
            "--name": "gaggle",
            "--data-dir": self.workdir / "etcd",
            "--listen-client-urls": etcd_url,
            "--advertise-client-urls": etcd_url,
            "--listen-peer-urls": peer_url,
            "--initial-advertise-peer-urls": peer_url,
            "--initial-cluster": f"gaggle={peer_url}",
            "--unsafe-no-fsync": "true",  # a test cluster: its data dies with it
            "--log-level": "warn",
        }
        apiserver = {
            "--etcd-servers": etcd_url,
            "--bind-address": self.address,
            "--secure-port": self.port,
            "--advertise-address": self.address,
            "--tls-cert-file": serving.cert,
            "--tls-private-key-file": serving.key,
            "--client-ca-file": pki.ca,
            "--service-account-issuer": ISSUER,
            "--service-account-key-file": pki.service_account_public,
            "--service-account-signing-key-file": pki.service_account_key,
            "--service-cluster-ip-range": self.service_range,
            "--authorization-mode": "Node,RBAC",
            # the defaults stay on; these come on top
            "--enable-admission-plugins": ",".join(("NodeRestriction", *self.admission)),
            "--kubelet-client-certificate": to_kubelet.cert,
            "--kubelet-client-key": to_kubelet.key,
            "--kubelet-certificate-authority": pki.ca,
            "--kubelet-preferred-address-types": "InternalIP",
            "--requestheader-client-ca-file": pki.ca,
            "--requestheader-allowed-names": "front-proxy-client",
            "--requestheader-username-headers": "X-Remote-User",
            "--requestheader-group-headers": "X-Remote-Group",
            "--requestheader-extra-headers-prefix": "X-Remote-Extra-",
            "--proxy-client-cert-file": front.cert,
            "--proxy-client-key-file": front.key,
            "--allow-privileged": "true",
            "--audit-policy-file": self.workdir / "audit-policy.yaml",
            "--audit-log-path": self.audit_log,
            "--audit-log-format": "json",
            "--cert-dir": self.workdir / "apiserver-certs",
            "--profiling": "false",
        }
        controller_manager = {
            "--kubeconfig": kcm,
            "--authentication-kubeconfig": kcm,
            "--authorization-kubeconfig": kcm,
            "--bind-address": "127.0.0.1",
            "--secure-port": free_port("127.0.0.1"),
            "--cert-dir": self.workdir / "kcm-certs",
            "--service-account-private-key-file": pki.service_account_key,
            "--root-ca-file": pki.ca,
            "--use-service-account-credentials": "true",
            "--cluster-name": "gaggle-local",
            "--service-cluster-ip-range": self.service_range,
            "--leader-elect": "false",
            "--controllers": "*,-bootstrapsigner,-tokencleaner",
            "--profiling": "false",
        }
        kube_scheduler = {
            "--kubeconfig": scheduler,
            "--authentication-kubeconfig": scheduler,
            "--authorization-kubeconfig": scheduler,
            "--bind-address": "127.0.0.1",
            "--secure-port": free_port("127.0.0.1"),
            "--cert-dir": self.workdir / "scheduler-certs",
            "--leader-elect": "false",
            "--profiling": "false",
        }
        made = [
            Component(name, [str(folder / name), *(f"{k}={v}" for k, v in flags.items())],
                      logs / f"{name}.log")
            for name, flags in (("etcd", etcd), ("kube-apiserver", apiserver),
                                ("kube-controller-manager", controller_manager),
                                ("kube-scheduler", kube_scheduler))
        ]  # fmt: skip
        self.components = made
        etcd_process, apiserver_process, *others = made
        deadline = time.monotonic() + timeout
        try:
            etcd_process.start()
            self._wait(etcd_process, lambda: _http_ok(f"{etcd_url}/health"), deadline)
            apiserver_process.start()
            self._wait(apiserver_process, lambda: self._ready("/readyz"), deadline)
            for component in others:
                component.start()
        except BaseException:
            self.stop()
            raise

    def _wait(self, component: Component, ready: object, deadline: float) -> None:
        assert callable(ready)
        while not ready():
            if component.exited() is not None:
                raise RuntimeError(
                    f"{component.name} exited with {component.exited()}:\n{component.tail()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"{component.name} did not come up:\n{component.tail()}")
            time.sleep(0.1)

    def _ready(self, path: str) -> bool:
        assert self.pki is not None
        assert self.admin is not None
        context = ssl.create_default_context(cafile=str(self.pki.ca))
        context.load_cert_chain(self.admin.cert, self.admin.key)
        try:
            with urllib.request.urlopen(f"{self.url}{path}", context=context, timeout=2) as r:
                return bool(r.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def write_kubeconfig(self, path: Path, pair: Pair, namespace: str = "default") -> Path:
        assert self.pki is not None
        user = pair.cert.stem
        path.write_text(
            KUBECONFIG.format(
                server=self.url,
                ca=self.pki.ca,
                user=user,
                cert=pair.cert,
                key=pair.key,
                namespace=namespace,
            )
        )
        path.chmod(0o600)
        return path

    def kubeconfig_for(
        self, user: str, groups: tuple[str, ...] = (), namespace: str = "default"
    ) -> Path:
        """A kubeconfig acting as ``user`` in ``groups`` (a client certificate from the CA)."""
        assert self.pki is not None
        name = "user-" + "".join(c if c.isalnum() else "-" for c in user)
        pair = self.pki.issue(name, user, groups)
        return self.write_kubeconfig(self.workdir / f"{name}.kubeconfig", pair, namespace)

    def requests_by(self, namespace: str, serviceaccount: str) -> list[tuple[str, str, int]]:
        """(verb, request URI, response code) of every request the API server's audit log
        holds from this ServiceAccount, oldest first."""
        user = f"system:serviceaccount:{namespace}:{serviceaccount}"
        found = []
        if self.audit_log.exists():
            for line in self.audit_log.read_text().splitlines():
                event = json.loads(line)
                if event.get("stage") == "ResponseComplete" and event["user"]["username"] == user:
                    code = event.get("responseStatus", {}).get("code", 0)
                    found.append((event["verb"], event["requestURI"], code))
        return found

    def stop(self) -> None:
        for component in reversed(self.components):
            component.stop()

    def failed(self) -> str | None:
        """Which component has exited, with its last lines; None while all run."""
        for component in self.components:
            if component.exited() is not None:
                return f"{component.name} exited with {component.exited()}:\n{component.tail()}"
        return None


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False
