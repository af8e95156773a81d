"""The node's own network namespace ``gn<id>``: where its pods' bridge, containerd and kube-proxy
live, one per cluster.

    host namespace                          node namespace gn<id>
    ggb<id> (bridge, host_ip = .1) ── gh<id> ══ uplink ── cbr0 (bridge, .2) ── pods' veths

The host's bridge (``network.Network``: the API server and CoreDNS listen on ``host_ip``) and the
node's bridge are one Ethernet segment joined by a veth pair, so pods reach ``host_ip`` and the
host reaches pod IPs directly, each delivering locally. A pod's packet to a Service address goes
to the node (``.2``, the pods' only route, see ``cni``), where kube-proxy's nftables rules
translate it and the node forwards it back onto its bridge; replies between pods on the bridge
pass the node's netfilter hooks too (br_netfilter, on by default in a new namespace), so they
are un-translated as kube-proxy expects.

Why a namespace rather than the host's (a production node has none): kube-proxy's nftables
table is named ``kube-proxy`` by a constant (pkg/proxy/nftables/proxier.go), so two clusters'
kube-proxies on one host would rewrite each other's table; here each has its own. IP forwarding
is switched on in this namespace only (``net.ipv4.ip_forward`` is per namespace: the host's
stays 0), and the namespace has no interface leading off the machine. A guard table
(``inet gaggle_guard``) drops, and counts, any packet in it bound anywhere but the cluster's pod
and Service ranges, and anything that would leave by another interface than the bridge.
Deleting the namespace removes every netfilter object the node made.
"""

from __future__ import annotations

import subprocess

from tests.cluster.network import ip

BRIDGE = "cbr0"
UPLINK = "uplink"  # the node's end of the veth pair to the host's bridge
GUARD_TABLE = "gaggle_guard"

GUARD = """\
table inet {table} {{
  chain prerouting {{
    type filter hook prerouting priority raw; policy accept;
    iifname "lo" accept
    ip daddr != {{ {pods}, {services} }} counter drop comment "off the cluster's ranges"
  }}
  chain forward {{
    type filter hook forward priority filter; policy accept;
    oifname != "{bridge}" counter drop comment "leaving by another interface than the bridge"
  }}
}}
"""


def name(cid: str) -> str:
    return f"gn{cid}"


def path(cid: str) -> str:
    return f"/run/netns/{name(cid)}"


def host_link(cid: str) -> str:
    return f"gh{cid}"


def enter(cid: str) -> list[str]:
    """The argv prefix that runs a command in the node's namespace (its network only: the
    mounts stay the host's, which containerd and the kubelet must share)."""
    return ["nsenter", f"--net={path(cid)}", "--"]


def run(cid: str, *argv: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*enter(cid), *argv], input=input, capture_output=True, text=True, timeout=20
    )


def create(cid: str, host_bridge: str, subnet: str, service_range: str) -> str:
    """The namespace, wired to ``host_bridge``; returns the node's address (``.2``)."""
    node_ip = f"{subnet}.2"
    netns = name(cid)
    ip("netns", "add", netns)
    ip("link", "add", host_link(cid), "type", "veth", "peer", "name", UPLINK, "netns", netns)
    ip("link", "set", host_link(cid), "master", host_bridge, "up")
    inside = ["-n", netns]
    ip(*inside, "link", "set", "lo", "up")
    ip(*inside, "link", "add", BRIDGE, "type", "bridge")
    ip(*inside, "link", "set", UPLINK, "master", BRIDGE, "up")
    ip(*inside, "addr", "add", f"{node_ip}/24", "dev", BRIDGE)
    ip(*inside, "link", "set", BRIDGE, "up")
    guard = GUARD.format(
        table=GUARD_TABLE, pods=f"{subnet}.0/24", services=service_range, bridge=BRIDGE
    )
    forwarding = ["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"]  # this namespace's
    for argv, text in ((["nft", "-f", "-"], guard), (forwarding, None)):
        done = run(cid, *argv, input=text)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} in {netns}: {done.stderr.strip()}")
    return node_ip


def exists(cid: str) -> bool:
    return name(cid) in ip("netns", "list", check=False).stdout.split()


def remove(cid: str) -> None:
    """Delete the namespace and the host's end of the veth pair (which takes the other end)."""
    ip("link", "del", host_link(cid), check=False)
    ip("netns", "del", name(cid), check=False)
