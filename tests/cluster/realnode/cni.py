"""The pod network's CNI configuration: Debian's ``bridge`` and ``host-local`` plugins.

Pods get a veth on the node's bridge (``cbr0`` in the node's network namespace, see ``netns``)
and an address of the cluster's pod /24 from ``.10`` up (``.1`` is the host, where the API
server and CoreDNS listen; ``.2`` the node). Where it differs from a usual kubenet/bridge setup:

- ``isGateway: false``, ``ipMasq: false``: the plugin puts no address on the bridge, switches
  on no forwarding and writes no NAT rule; the node's address is ours (``netns``);
- the only route a pod gets is the Service range via the node (where kube-proxy translates):
  no default route, so a packet to any other address has no route in the pod;
- ``hairpinMode``: a pod reaches itself through its own Service;
- host-local keeps its leases in the workdir (``dataDir``), not /var/lib/cni/networks. The
  results cache of libcni has no setting in containerd: its files go to /var/lib/cni/results,
  named ``<network>-<container>-eth0``, and the network name carries the cluster id (``host``
  removes them).
"""

from __future__ import annotations

import json
from pathlib import Path

BRIDGE = "cbr0"  # inside the node's own network namespace: one per cluster, no clash


def network_name(cid: str) -> str:
    return f"gaggle-{cid}"


def write(conf_dir: Path, cid: str, subnet: str, service_range: str, ipam_dir: Path) -> Path:
    """The conflist for pods of ``subnet`` (e.g. ``10.213.7``, a /24) in ``conf_dir``."""
    node_ip = f"{subnet}.2"
    conflist = {
        "cniVersion": "1.0.0",
        "name": network_name(cid),
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": False,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(ipam_dir),
                    "ranges": [
                        [
                            {
                                "subnet": f"{subnet}.0/24",
                                "rangeStart": f"{subnet}.10",
                                "rangeEnd": f"{subnet}.254",
                                "gateway": node_ip,
                            }
                        ]
                    ],
                    "routes": [{"dst": service_range, "gw": node_ip}],
                },
            }
        ],
    }
    conf_dir.mkdir(parents=True, exist_ok=True)
    path = conf_dir / "10-gaggle.conflist"
    path.write_text(json.dumps(conflist, indent=2) + "\n")
    return path
