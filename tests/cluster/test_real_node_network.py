"""The real node's network: Services through the real kube-proxy and CoreDNS, and nothing leaves
the machine.

A pod reaches another through its Service's name (CoreDNS resolves it, kube-proxy's nftables
rules in the node's namespace translate it), and the API server through the ``kubernetes``
Service. The host does not forward (``net.ipv4.ip_forward`` stays 0); a pod has no route off
the cluster's ranges, and one that makes itself a default route (NET_ADMIN) has its packets
dropped, and counted, by the node's guard table; the only masquerading is kube-proxy's, in the
node's namespace, whose only way out is its bridge.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.cluster import Cluster
from tests.cluster.fixtures import Kubectl
from tests.cluster.realnode import netns
from tests.cluster.test_real_node import apply, phase, pod, ready, toolbox, wait_for

pytestmark = pytest.mark.timeout(300)

OUTSIDE = "203.0.113.7"  # TEST-NET-3 (this machine's own gateway is in TEST-NET-1: not that)


def ended(kubectl: Kubectl, name: str) -> str:
    return wait_for(f"{name} to end", lambda: phase(kubectl, name, "Succeeded", "Failed"))


def test_a_pod_reaches_another_and_the_api_server_through_services(
    real_cluster: Cluster, real_kubectl: Kubectl
) -> None:
    serve = (
        "mkdir -p /tmp/w && echo from-web > /tmp/w/index.html && exec httpd -f -p 8080 -h /tmp/w"
    )
    web = pod(
        "web",
        toolbox(real_cluster),
        ["sh", "-c", serve],
        restart="Always",
        readinessProbe={"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
        volumeMounts=[{"name": "tmp", "mountPath": "/tmp"}],
    )
    web["spec"]["volumes"] = [{"name": "tmp", "emptyDir": {}}]
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    apply(real_kubectl, web, service)
    wait_for("web to be Ready", lambda: ready(real_kubectl, "web"))
    # kube-proxy programs the endpoint a moment after it is Ready: the client retries, bounded
    client = (
        "for i in $(seq 60); do wget -q -O- http://web/ && break; sleep 0.5; done; "
        "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc kubernetes.default.svc.cluster.local 443"
    )
    apply(real_kubectl, pod("client", toolbox(real_cluster), ["sh", "-c", client]))
    assert ended(real_kubectl, "client") == "Succeeded"
    logs = real_kubectl("logs", "client").stdout
    assert logs.startswith("from-web\n")
    # the API server's TLS port answering plain HTTP: Go's own words
    assert "Client sent an HTTP request to an HTTPS server." in logs


def guard_drops(cid: str) -> int:
    done = netns.run(cid, "nft", "-j", "list", "table", "inet", netns.GUARD_TABLE)
    for item in json.loads(done.stdout)["nftables"]:
        rule = item.get("rule")
        if rule and rule.get("comment") == "off the cluster's ranges":
            return next(int(e["counter"]["packets"]) for e in rule["expr"] if "counter" in e)
    raise AssertionError(f"no guard rule in {done.stdout}")


def test_nothing_a_pod_sends_leaves_the_machine(
    real_cluster: Cluster, real_kubectl: Kubectl
) -> None:
    cid, node_ip = real_cluster.net.cid, f"{real_cluster.net.subnet}.2"
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == "0\n"
    assert (
        netns.run(cid, "ip", "-4", "route")
        .stdout.split("\n")[0]
        .startswith(f"{real_cluster.net.subnet}.0/24 dev {netns.BRIDGE} ")
    )
    assert len(netns.run(cid, "ip", "-4", "route").stdout.splitlines()) == 1  # no default route

    plain = f"nc {OUTSIDE} 80 </dev/null; echo rc=$?"
    apply(real_kubectl, pod("plain", toolbox(real_cluster), ["sh", "-c", plain]))
    ended(real_kubectl, "plain")
    assert "Network is unreachable" in real_kubectl("logs", "plain").stdout

    before = guard_drops(cid)
    # a pod that gives itself a default route, via the node and via the host
    forced = "; ".join(
        f"ip route replace default via {gateway}; timeout 3 nc {OUTSIDE} 80 </dev/null; echo rc=$?"
        for gateway in (node_ip, real_cluster.host_ip)
    )
    capable = pod(
        "capable",
        toolbox(real_cluster),
        ["sh", "-c", forced],
        securityContext={"capabilities": {"add": ["NET_ADMIN"]}},
    )
    apply(real_kubectl, capable)
    ended(real_kubectl, "capable")
    logs = real_kubectl("logs", "capable").stdout
    assert logs.count("rc=") == 2
    assert "rc=0" not in logs
    assert guard_drops(cid) >= before + 2  # at least the two SYNs, dropped at the node


def test_the_only_masquerading_is_kube_proxys_inside_the_node(real_cluster: Cluster) -> None:
    cid = real_cluster.net.cid
    host = subprocess.run(
        ["nft", "-j", "list", "tables"], capture_output=True, text=True, check=True
    )
    host_tables = {
        (item["table"]["family"], item["table"]["name"])
        for item in json.loads(host.stdout)["nftables"]
        if "table" in item
    }
    assert ("ip", "kube-proxy") not in host_tables  # kube-proxy's rules are the node's own
    assert ("inet", netns.GUARD_TABLE) not in host_tables

    ruleset: list[dict[str, Any]] = json.loads(
        netns.run(cid, "nft", "-j", "list", "ruleset").stdout
    )["nftables"]
    masquerading = [
        (item["rule"]["family"], item["rule"]["table"])
        for item in ruleset
        if "rule" in item and any("masquerade" in expr for expr in item["rule"]["expr"])
    ]
    assert masquerading  # kube-proxy's, for traffic to ClusterIPs from outside the pod range
    assert set(masquerading) <= {("ip", "kube-proxy"), ("ip6", "kube-proxy")}
    # and the node's only way out is its bridge: every other link is a port of it
    links = json.loads(netns.run(cid, "ip", "-j", "link").stdout)
    assert {link["ifname"] for link in links if link.get("master") != netns.BRIDGE} == {
        "lo",
        netns.BRIDGE,
    }
