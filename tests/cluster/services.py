"""The service proxy: what kube-proxy's nftables mode does for ClusterIP Services, from the same
inputs (Services and EndpointSlices, watched as ``system:kube-proxy``).

For each Service port with a ClusterIP: a connection to ``clusterIP:port`` is DNATed to one of
the Ready endpoints of its EndpointSlices (chosen at random per connection, as kube-proxy does),
on the slice's port of the same name; with no Ready endpoint it is rejected (ICMP port
unreachable: the client sees "connection refused", as with kube-proxy); any other address of the
Service range is refused as unreachable (kube-proxy's nftables mode does the same), and the
host's ``prohibit`` route (``network``) backs that up. Where this differs from
kube-proxy: the rules live in the OUTPUT hook of each pod's own network namespace and of the
host (kube-proxy's are in the host's PREROUTING), so that no packet is ever forwarded by the
host; no NodePort, LoadBalancer, externalIPs, session affinity or traffic policies.

Every change is written as one nft transaction (the table deleted and made anew) to the host and
every pod namespace; a new pod's namespace gets the current rules before its containers start.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterable
from typing import Any

from tests.cluster.client import Client, Obj, coalesce, mirror

TABLE = "gaggle_services"


def ruleset(
    services: dict[tuple[str, str], Obj],
    slices: dict[tuple[str, str], Obj],
    service_range: str,
    stale: Iterable[str] = (),
) -> tuple[str, set[str]]:
    """The nft script for these Services and EndpointSlices (keys: namespace, name), and the
    endpoint chains it uses; whatever else is sent to ``service_range`` is refused (host
    unreachable), as kube-proxy's nftables mode refuses traffic to addresses it does not serve.

    The hooked chains are declared, flushed and filled, never deleted: removing a netns' last
    nat hook drops the NAT of every connection it had made (the kernel cleans up its conntrack
    bindings), and a kept-alive connection to the API server then hangs (seen: the operator's
    next request blocked for a minute). ``stale`` endpoint chains are deleted."""
    by_service: dict[tuple[str, str], list[Obj]] = {}
    for (namespace, _), eps in slices.items():
        owner = (eps["metadata"].get("labels") or {}).get("kubernetes.io/service-name")
        if owner:
            by_service.setdefault((namespace, owner), []).append(eps)
    chains: dict[str, str] = {}
    nat: list[str] = []
    reject: list[str] = []
    for key, svc in sorted(services.items()):
        spec = svc.get("spec", {})
        ip = spec.get("clusterIP")
        if not ip or ip == "None":
            continue
        for port in spec.get("ports") or []:
            proto = port.get("protocol", "TCP").lower()
            backends = sorted(
                _ready(by_service.get(key, []), port.get("name") or "", proto.upper())
            )
            match = f"ip daddr {ip} {proto} dport {port['port']}"
            if not backends:
                reject.append(f"{match} reject")
                continue
            jumps = []
            for address, target in backends:
                chain = f"ep_{proto}_{address.replace('.', '_')}_{target}"
                chains[chain] = f"meta l4proto {proto} dnat ip to {address}:{target}"
                jumps.append(chain)
            pick = ", ".join(f"{i} : jump {chain}" for i, chain in enumerate(jumps))
            nat.append(f"{match} numgen random mod {len(jumps)} vmap {{ {pick} }}")
    reject.append(f"ip daddr {service_range} reject with icmp type host-unreachable")
    lines = [
        f"table ip {TABLE} {{",
        "  chain nat_output { type nat hook output priority -100; policy accept; }",
        "  chain filter_output { type filter hook output priority 0; policy accept; }",
        "}",
        f"flush chain ip {TABLE} nat_output",
        f"flush chain ip {TABLE} filter_output",
    ]
    for chain, rule in sorted(chains.items()):
        lines += [f"add chain ip {TABLE} {chain}", f"flush chain ip {TABLE} {chain}",
                  f"add rule ip {TABLE} {chain} {rule}"]  # fmt: skip
    lines += [f"add rule ip {TABLE} nat_output {rule}" for rule in nat]
    lines += [f"add rule ip {TABLE} filter_output {rule}" for rule in reject]
    for chain in sorted(set(stale) - set(chains)):  # declared first: deleting a missing one fails
        lines += [f"add chain ip {TABLE} {chain}", f"delete chain ip {TABLE} {chain}"]
    return "\n".join(lines) + "\n", set(chains)


def _ready(slices: list[Obj], port_name: str, protocol: str) -> set[tuple[str, int]]:
    found = set()
    for eps in slices:
        if eps.get("addressType", "IPv4") != "IPv4":
            continue
        ports = [
            p
            for p in eps.get("ports") or []
            if (p.get("name") or "") == port_name
            and p.get("protocol", "TCP") == protocol
            and p.get("port")
        ]
        for endpoint in eps.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            for address in endpoint.get("addresses") or []:
                found.update((address, int(p["port"])) for p in ports)
    return found


def apply(script: str, netns: str | None) -> str:
    """Write the rules into ``netns`` (None: the host); the nft error, or "" when done."""
    command = ["nft", "-f", "-"]
    if netns is not None:
        command = ["ip", "netns", "exec", netns, *command]
    done = subprocess.run(command, input=script, capture_output=True, text=True, timeout=20)
    return done.stderr.strip() if done.returncode != 0 else ""


def remove(netns: str | None) -> None:
    command = ["nft", "delete", "table", "ip", TABLE]
    if netns is not None:
        command = ["ip", "netns", "exec", netns, *command]
    subprocess.run(command, capture_output=True, timeout=20)


class ServiceProxy:
    def __init__(self, client: Client, service_range: str, namespaces: Any) -> None:
        """``namespaces()`` gives the pods' network namespaces to write to."""
        self.client, self.service_range, self.namespaces = client, service_range, namespaces
        self.services: dict[tuple[str, str], Obj] = {}
        self.slices: dict[tuple[str, str], Obj] = {}
        self.script, self.chains = ruleset({}, {}, service_range)
        self.synced = asyncio.Event()
        self.errors: list[str] = []
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        services, slices = asyncio.Event(), asyncio.Event()
        changed = self._changed
        self._tasks = [
            loop.create_task(mirror(self.client, "/api/v1/services", self.services, services,
                                    changed)),
            loop.create_task(mirror(self.client, "/apis/discovery.k8s.io/v1/endpointslices",
                                    self.slices, slices, changed)),
            loop.create_task(coalesce(changed, self._write)),
        ]  # fmt: skip
        await asyncio.wait_for(asyncio.gather(services.wait(), slices.wait()), 30)
        await self._write()
        self.synced.set()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.to_thread(remove, None)

    async def _write(self) -> None:
        async with self._lock:
            self.script, self.chains = ruleset(
                self.services, self.slices, self.service_range, self.chains
            )
            for netns in [None, *self.namespaces()]:
                error = await asyncio.to_thread(apply, self.script, netns)
                if error and netns is not None and "No such file" in error:
                    continue  # the pod is gone
                if error:
                    self.errors.append(f"{netns or 'host'}: {error}")

    async def attach(self, netns: str, *_: Any) -> None:
        """A new pod's namespace: the current rules, before its containers start."""
        async with self._lock:
            error = await asyncio.to_thread(apply, self.script, netns)
        if error:
            self.errors.append(f"{netns}: {error}")
            raise RuntimeError(f"service rules for {netns}: {error}")
