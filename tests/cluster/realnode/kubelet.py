"""The real kubelet v1.37, configured for this machine, run in the node's network namespace.

Its identity and TLS come from the cluster's CA (``pki``), as kubeadm's would: a client
certificate ``system:node:<NODE>`` in ``system:nodes`` (the Node authorizer and NodeRestriction
judge it), and a serving certificate for the node's address that the API server verifies with
the same CA (``--kubelet-certificate-authority``), so ``kubectl logs``/``exec`` reach it. Webhook
authentication and authorization: the API server's own client certificate (``system:masters``)
is what it accepts for logs and exec.

Where it differs from a production node's kubelet:

- it runs in the node's network namespace (``netns``), so the Node's InternalIP is the node's
  bridge address ``.2``, not the host's; its ports are the defaults (10250, healthz 10248 on the
  namespace's own loopback), free since the namespace is the cluster's; the iptables chains it
  makes when iptables is installed (KUBE-IPTABLES-HINT, KUBE-FIREWALL, KUBE-KUBELET-CANARY) are
  in that namespace too, and go with it;
- cgroup v1 with the cgroupfs driver (``failCgroupV1: false``: 1.37 refuses v1 otherwise) under
  its own ``cgroupRoot`` ``/gaggle-<id>`` (``cgroups``);
- its root dir, pod logs, flexvolume and certificate dirs are in the workdir; two paths are
  fixed in its code and shared by every kubelet of the machine: ``/var/lib/kubelet/device-plugins``
  (a constant of the device plugin API) and ``/var/log/containers`` (a symlink per container):
  ``host`` removes what this node put there;
- ``resolvConf`` is an empty file: a ClusterFirst pod resolves through CoreDNS only, and a pod
  with ``dnsPolicy: Default`` has no nameserver, so no name lookup ever leaves the machine;
- ``failSwapOn: false``, ``imageGCHighThresholdPercent: 100`` (the imported images are never
  collected: there is nowhere to pull them back from), eviction thresholds near zero (a test
  machine's disk is not the pods' concern), no graceful node shutdown (needs systemd-logind).
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.cluster import binaries
from tests.cluster.controlplane import Component, ControlPlane
from tests.cluster.pki import Pki

NODE = "gaggle-node"  # the one Node's name (its kubelet's --hostname-override)
PORT = 10250
HEALTHZ = 10248


def config(
    workdir: Path,
    node_ip: str,
    cgroup_root: str,
    socket: Path,
    pki: Pki,
    serving_cert: Path,
    serving_key: Path,
    dns_ip: str,
) -> dict[str, object]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": cgroup_root,
        "containerRuntimeEndpoint": f"unix://{socket}",
        "address": node_ip,
        "port": PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": HEALTHZ,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(pki.ca)},
        },
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(serving_cert),
        "tlsPrivateKeyFile": str(serving_key),
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "failSwapOn": False,
        "podLogsDir": str(workdir / "pod-logs"),
        "volumePluginDir": str(workdir / "kubelet-plugins"),
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "50Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
            "imagefs.inodesFree": "1%",
        },
        "clusterDNS": [dns_ip],
        "clusterDomain": "cluster.local",
        "resolvConf": str(workdir / "kubelet-resolv.conf"),
        "serializeImagePulls": True,
        "registerNode": True,
        "shutdownGracePeriod": "0s",
        "shutdownGracePeriodCriticalPods": "0s",
        "staticPodPath": "",
    }


class Kubelet:
    """The kubelet of node ``NODE``: ``start`` (credentials, config, process), ``stop``."""

    def __init__(self, workdir: Path, netns_argv: list[str], node_ip: str) -> None:
        self.workdir, self.node_ip, self.netns_argv = workdir, node_ip, netns_argv
        self.root = workdir / "kubelet"
        self.component: Component | None = None

    def start(self, control: ControlPlane, cgroup_root: str, socket: Path, dns_ip: str) -> None:
        pki = control.pki
        assert pki is not None
        client = pki.issue("realnode-kubelet", f"system:node:{NODE}", ("system:nodes",))
        serving = pki.issue(
            "realnode-kubelet-serving", NODE, server_ips=(self.node_ip,), server_names=(NODE,)
        )
        kubeconfig = control.write_kubeconfig(self.workdir / "kubelet.kubeconfig", client)
        (self.workdir / "kubelet-resolv.conf").write_text("")
        for folder in (self.root, self.workdir / "pod-logs", self.workdir / "kubelet-plugins"):
            folder.mkdir(parents=True, exist_ok=True)
        settings = config(
            self.workdir, self.node_ip, cgroup_root, socket, pki, serving.cert, serving.key, dns_ip
        )
        path = self.workdir / "kubelet.json"  # JSON is YAML: the kubelet reads it as such
        path.write_text(json.dumps(settings, indent=2) + "\n")
        argv = [
            *self.netns_argv,
            str(binaries.BIN / "kubelet"),
            f"--config={path}",
            f"--kubeconfig={kubeconfig}",
            f"--root-dir={self.root}",
            f"--cert-dir={self.workdir / 'kubelet-pki'}",
            f"--hostname-override={NODE}",
            f"--node-ip={self.node_ip}",
            "--v=1",
        ]
        self.component = Component("kubelet", argv, self.workdir / "logs" / "kubelet.log")
        self.component.start()

    def failed(self) -> str | None:
        if self.component is not None and self.component.exited() is not None:
            return f"kubelet exited with {self.component.exited()}:\n{self.component.tail()}"
        return None

    def stop(self) -> None:
        if self.component is not None:
            self.component.stop(grace=10)
