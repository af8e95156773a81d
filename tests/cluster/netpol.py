"""NetworkPolicy on our node: what a CNI's policy agent (Calico's Felix, kube-router) does, from
the same inputs (NetworkPolicies, Pods and Namespaces, watched).

Each pod's network namespace gets a table ``inet gaggle_policy`` with an input and an output
chain. A pod that some policy of its namespace selects for Ingress (``policyTypes``, or by
default) accepts new connections only from the peers of those policies' rules, on their ports;
the same for Egress with destinations. The rest is dropped (the sender times out, as with
Calico). Replies (``ct state established,related``) and loopback always pass; so does traffic
from the node itself (the bridge's address: kubelet probes, ``kubectl port-forward``), as most
CNIs allow by default. Peers: ``podSelector`` (this namespace), ``namespaceSelector``, both
(pods in those namespaces), ``ipBlock`` (``cidr`` less ``except``); ports: protocol, number or
a named container port, ``endPort``. Pods are matched by their v4 and v6 addresses
(network.pod_ipv6). Where it differs from a CNI: the node's own services (the API server and
CoreDNS) listen on the bridge's address, not in pods, so an egress rule must allow them by
``ipBlock`` (a rule naming the kube-dns pods matches nothing here); egress rules with a named
port match no destination; only TCP, UDP and SCTP.

A pod in a namespace with no policy gets no table at all: tests without policies run as before.
Rules are written when a pod's namespace is made (before its containers start) and rewritten,
for the pods whose rules changed, after every change.
"""

from __future__ import annotations

import asyncio
import ipaddress
import subprocess
from collections.abc import Callable, Iterable
from typing import Any

from tests.cluster.client import Client, Obj, coalesce, mirror, named

TABLE = "gaggle_policy"
Key = tuple[str, str]


def matches(selector: Obj | None, labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions); an empty one matches everything."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        present = key in labels
        if operator == "In" and (not present or labels[key] not in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _labels(obj: Obj) -> dict[str, str]:
    return dict(obj["metadata"].get("labels") or {})


def live_ip(pod: Obj) -> str | None:
    """A pod's IP while it holds one: an ended pod's IP is free for the next pod."""
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return None
    ip = status.get("podIP")
    return str(ip) if ip else None


def policy_types(policy: Obj) -> set[str]:
    spec = policy.get("spec") or {}
    given = spec.get("policyTypes")
    if given:
        return set(given)
    return {"Ingress", *(["Egress"] if "egress" in spec else [])}


class Agent:
    """The policy agent: ``addresses(pod_ip)`` gives every address of a pod (v4 and v6)."""

    def __init__(
        self,
        client: Client,
        node_addresses: tuple[str, ...],
        netns_of: Callable[[str], str | None],
        addresses: Callable[[str], tuple[str, ...]],
    ) -> None:
        self.client = client
        self.node_addresses, self.netns_of, self.addresses = node_addresses, netns_of, addresses
        self.policies: dict[Key, Obj] = {}
        self.pods: dict[Key, Obj] = {}
        self.namespaces: dict[str, Obj] = {}
        self.written: dict[str, str] = {}  # netns -> the script it holds
        self.errors: list[str] = []
        self._changed = asyncio.Event()
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[Any]] = []

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        ready = [asyncio.Event() for _ in range(3)]
        changed = self._changed
        self._tasks = [
            loop.create_task(mirror(self.client, "/apis/networking.k8s.io/v1/networkpolicies",
                                    self.policies, ready[0], changed)),
            loop.create_task(mirror(self.client, "/api/v1/pods", self.pods, ready[1], changed)),
            loop.create_task(mirror(self.client, "/api/v1/namespaces", self.namespaces, ready[2],
                                    changed, key=named)),
            loop.create_task(coalesce(changed, self._write_all)),
        ]  # fmt: skip
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in ready)), 30)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _write_all(self) -> None:
        async with self._lock:
            for pod in list(self.pods.values()):
                ip = live_ip(pod)
                netns = self.netns_of(ip) if ip else None
                if netns is not None:
                    await self._write(netns, self.script(pod))

    async def attach(self, netns: str, pod: Obj, ip: str) -> None:
        """A new pod's namespace: its own rules before its containers start."""
        running = {**pod, "status": {**(pod.get("status") or {}), "podIP": ip}}
        async with self._lock:
            self.pods[(pod["metadata"]["namespace"], pod["metadata"]["name"])] = running
            self.written.pop(netns, None)  # a new namespace, though its name may be reused
            await self._write(netns, self.script(running))

    async def _write(self, netns: str, script: str) -> None:
        if self.written.get(netns, "") == script:
            return
        if script:
            command = ["ip", "netns", "exec", netns, "nft", "-f", "-"]
        else:
            command = ["ip", "netns", "exec", netns, "nft", "delete", "table", "inet", TABLE]
        done = await asyncio.to_thread(
            subprocess.run, command, input=script, capture_output=True, text=True, timeout=20
        )
        if done.returncode != 0 and "No such file" not in done.stderr:
            self.errors.append(f"{netns}: {done.stderr.strip()}")
            return
        self.written[netns] = script

    # -- the rules -------------------------------------------------------------------------------

    def _selecting(self, pod: Obj, kind: str) -> list[Obj]:
        namespace = pod["metadata"]["namespace"]
        return [
            policy
            for (ns, _), policy in sorted(self.policies.items())
            if ns == namespace
            and kind in policy_types(policy)
            and matches((policy.get("spec") or {}).get("podSelector"), _labels(pod))
        ]

    def _peer_addresses(self, peer: Obj, namespace: str) -> list[str]:
        if "ipBlock" in peer:
            return []  # written as a network, not addresses (see _peer_match)
        in_namespaces: Iterable[str]
        if "namespaceSelector" in peer:
            selector = peer["namespaceSelector"]
            in_namespaces = [n for n, o in self.namespaces.items() if matches(selector, _labels(o))]
        else:
            in_namespaces = [namespace]
        wanted = set(in_namespaces)
        found: list[str] = []
        for (ns, _), pod in sorted(self.pods.items()):
            ip = live_ip(pod)
            if ns in wanted and ip and matches(peer.get("podSelector"), _labels(pod)):
                found.extend(self.addresses(ip))
        return found

    def _peer_match(self, peer: Obj, namespace: str, direction: str) -> list[str]:
        """nft match expressions (``ip saddr {…}``…) for one peer; [] when it matches nobody."""
        field = "saddr" if direction == "in" else "daddr"
        if "ipBlock" in peer:
            block = ipaddress.ip_network(peer["ipBlock"]["cidr"], strict=False)
            family = "ip" if block.version == 4 else "ip6"
            exceptions = peer["ipBlock"].get("except") or []
            match = f"{family} {field} {block}"
            if exceptions:
                match += f" {family} {field} != {{ {', '.join(exceptions)} }}"
            return [match]
        found = self._peer_addresses(peer, namespace)
        matches_ = []
        for family, version in (("ip", 4), ("ip6", 6)):
            chosen = [a for a in found if ipaddress.ip_address(a).version == version]
            if chosen:
                matches_.append(f"{family} {field} {{ {', '.join(chosen)} }}")
        return matches_

    def _port_matches(self, ports: list[Obj], pod: Obj | None) -> list[str] | None:
        """nft port matches for a rule's ports ([""]: any port); None when none can match."""
        if not ports:
            return [""]
        found = []
        for port in ports:
            protocol = str(port.get("protocol") or "TCP").lower()
            number = port.get("port")
            if number is None:
                found.append(f"meta l4proto {protocol}")
                continue
            if isinstance(number, str):  # a named port: the selected pod's container port
                number = _named_port(pod, number, protocol) if pod is not None else None
                if number is None:
                    continue
            end = port.get("endPort")
            span = f"{number}-{end}" if end else str(number)
            found.append(f"{protocol} dport {span}")
        return found or None

    def _chain(self, pod: Obj, kind: str) -> list[str]:
        """The accept rules for one direction, or [] when no policy isolates it."""
        policies = self._selecting(pod, kind)
        if not policies:
            return []
        direction = "in" if kind == "Ingress" else "out"
        namespace = pod["metadata"]["namespace"]
        lines = ["ct state established,related accept", f"{direction[0]}if lo accept"]
        field = "saddr" if direction == "in" else "daddr"
        for address in self.node_addresses:
            family = "ip6" if ":" in address else "ip"
            lines.append(f"{family} {field} {address} accept")
        for policy in policies:
            rules = (policy.get("spec") or {}).get(kind.lower()) or []
            for rule in rules:
                peers = rule.get("from" if kind == "Ingress" else "to")
                peer_matches = (
                    [""]
                    if not peers
                    else [m for peer in peers for m in self._peer_match(peer, namespace, direction)]
                )
                own = pod if kind == "Ingress" else None  # whose named ports
                ports = self._port_matches(rule.get("ports") or [], own)
                if ports is None:
                    continue
                for peer in peer_matches:
                    for port in ports:
                        lines.append(" ".join(p for p in (peer, port, "accept") if p))
        lines.append("drop")
        return lines

    def script(self, pod: Obj) -> str:
        """The nft script for this pod's namespace ("" when no policy is in its namespace)."""
        namespace = pod["metadata"]["namespace"]
        if not any(ns == namespace for ns, _ in self.policies):
            return ""
        chains = []
        for kind, name, hook in (("Ingress", "input", "input"), ("Egress", "output", "output")):
            body = "\n    ".join(self._chain(pod, kind))
            chains.append(
                f"  chain {name} {{\n    type filter hook {hook} priority 0; policy accept;\n"
                f"    {body}\n  }}"
            )
        return (
            f"table inet {TABLE} {{}}\ndelete table inet {TABLE}\n"
            f"table inet {TABLE} {{\n" + "\n".join(chains) + "\n}\n"
        )


def _named_port(pod: Obj, name: str, protocol: str) -> int | None:
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            same = str(port.get("protocol") or "TCP").lower() == protocol
            if port.get("name") == name and same:
                return int(port["containerPort"])
    return None
