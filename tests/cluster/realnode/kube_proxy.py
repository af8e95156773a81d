"""The real kube-proxy v1.37 in nftables mode, in the node's network namespace: ClusterIPs.

It translates Service addresses for the pods of this node, with the credentials a kubeadm
cluster gives it (``system:kube-proxy``, bound to ``system:node-proxier``). Where it differs
from a production node's:

- it runs in the node's network namespace (``netns``): its ``ip kube-proxy`` / ``ip6
  kube-proxy`` tables (names fixed in its code) are this cluster's alone, and go when the
  namespace is deleted; nothing of it is in the host's ruleset;
- it leaves the kernel's conntrack settings alone (``maxPerCore: 0``, ``min: 0``, the TCP
  timeouts 0): some are machine-wide;
- NodePorts only on the node's address (``nodePortAddresses: [primary]``); health and metrics
  on the namespace's own addresses;
- ``nft`` is the only command on its PATH: no iptables or ipvs leftovers to clean (a production
  kube-proxy in nftables mode also sweeps its iptables and ipvs modes' rules at start).
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.cluster import binaries
from tests.cluster.controlplane import Component, ControlPlane
from tests.cluster.realnode.kubelet import NODE

HEALTHZ = 10256
METRICS = 10249


def config(kubeconfig: Path, node_ip: str, cluster_cidr: str) -> dict[str, object]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "nftables",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": NODE,
        "bindAddress": node_ip,
        "healthzBindAddress": f"{node_ip}:{HEALTHZ}",
        "metricsBindAddress": f"127.0.0.1:{METRICS}",
        "clusterCIDR": cluster_cidr,
        "detectLocalMode": "ClusterCIDR",
        "nodePortAddresses": ["primary"],
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
    }


class KubeProxy:
    def __init__(self, workdir: Path, netns_argv: list[str], node_ip: str) -> None:
        self.workdir, self.node_ip, self.netns_argv = workdir, node_ip, netns_argv
        self.component: Component | None = None

    def start(self, control: ControlPlane, cluster_cidr: str, path_dir: Path) -> None:
        assert control.pki is not None
        identity = control.pki.issue("realnode-kube-proxy", "system:kube-proxy")
        kubeconfig = control.write_kubeconfig(self.workdir / "kube-proxy.kubeconfig", identity)
        settings = self.workdir / "kube-proxy.json"
        settings.write_text(
            json.dumps(config(kubeconfig, self.node_ip, cluster_cidr), indent=2) + "\n"
        )
        argv = [
            *self.netns_argv,
            "env",
            f"PATH={path_dir}",
            str(binaries.BIN / "kube-proxy"),
            f"--config={settings}",
            "--v=1",
        ]
        self.component = Component("kube-proxy", argv, self.workdir / "logs" / "kube-proxy.log")
        self.component.start()

    def failed(self) -> str | None:
        if self.component is not None and self.component.exited() is not None:
            return f"kube-proxy exited with {self.component.exited()}:\n{self.component.tail()}"
        return None

    def stop(self) -> None:
        if self.component is not None:
            self.component.stop(grace=10)
