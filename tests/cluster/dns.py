"""Cluster DNS: the real CoreDNS with its kubernetes plugin, as a cluster's ``kube-dns`` runs it.

CoreDNS runs as a process on the host (not as a pod: it is part of the test machine), listening
on the bridge address, and reads Services and EndpointSlices with its own identity
(``system:coredns``, bound to the ClusterRole a kubeadm cluster gives it). The ``kube-dns``
Service in ``kube-system`` has the tenth address of the Service range, as a kubeadm cluster's
has, and an EndpointSlice naming CoreDNS's address, so pods reach it through the service proxy
like any Service. What resolves, as on a cluster: ``<svc>.<ns>.svc.cluster.local`` (and the
shorter names through the search path), a headless Service to its Ready pods only, pods' own
``<hostname>.<subdomain>`` names, reverse lookups. Where this differs from a default Corefile:
no ``forward`` (nothing leaves the machine: any other name is NXDOMAIN at once) and no ``cache``
(a test sees an EndpointSlice change within the records' 5 s TTL at most, without a 30 s cache).
"""

from __future__ import annotations

from pathlib import Path

from tests.cluster import binaries
from tests.cluster.controlplane import Component

COREFILE = """\
cluster.local:53 in-addr.arpa:53 {{
    bind {address}
    errors
    health {address}:{health}
    ready {address}:{ready}
    kubernetes cluster.local in-addr.arpa {{
        kubeconfig {kubeconfig}
        pods insecure
        fallthrough in-addr.arpa
        ttl 5
    }}
    loadbalance
}}
.:53 {{
    bind {address}
    errors
    template ANY ANY {{
        rcode NXDOMAIN
    }}
}}
"""

RBAC = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: system:coredns
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: system:coredns
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:coredns
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: system:coredns
"""

SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {{k8s-app: kube-dns, kubernetes.io/name: CoreDNS}}
spec:
  clusterIP: {ip}
  ports:
  - {{name: dns, port: 53, protocol: UDP, targetPort: 53}}
  - {{name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kube-dns-host
  namespace: kube-system
  labels:
    kubernetes.io/service-name: kube-dns
    endpointslice.kubernetes.io/managed-by: gaggle-test-cluster
addressType: IPv4
endpoints:
- addresses: [{address}]
  conditions: {{ready: true}}
ports:
- {{name: dns, port: 53, protocol: UDP}}
- {{name: dns-tcp, port: 53, protocol: TCP}}
"""


def objects(service_ip: str, address: str) -> str:
    """The manifests to apply before CoreDNS starts: its RBAC, the kube-dns Service."""
    return RBAC + "---\n" + SERVICE.format(ip=service_ip, address=address)


def component(workdir: Path, address: str, kubeconfig: Path, health: int, ready: int) -> Component:
    corefile = workdir / "Corefile"
    corefile.write_text(
        COREFILE.format(address=address, kubeconfig=kubeconfig, health=health, ready=ready)
    )
    argv = [str(binaries.ensure() / "coredns"), "-conf", str(corefile)]
    return Component("coredns", argv, workdir / "logs" / "coredns.log")
