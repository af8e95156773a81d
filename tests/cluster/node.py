"""The Node object our kubelet keeps up: registered with this machine's capacity, Ready, its
address on the cluster bridge and the port of its HTTPS endpoint, with a Lease in
``kube-node-lease`` renewed every 10 s (the node lifecycle controller's liveness signal) and the
status refreshed every 40 s, as a kubelet does. Conditions never change: this node is Ready
while it runs (no pressure eviction)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import platform
import time

from tests.cluster.client import ApiError, Client, Obj

NODE = "gaggle-node"
VERSION = "v1.37.2"
LEASE_SECONDS = 40
LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro() -> str:
    return datetime.datetime.fromtimestamp(time.time(), datetime.UTC).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ"
    )


CONDITIONS = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)  # fmt: skip


class Node:
    def __init__(self, client: Client, address: str, port: int) -> None:
        self.client, self.address, self.port = client, address, port
        self.since = now()
        self.uid = ""

    def status(self) -> Obj:
        stamp = now()
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 1024
        capacity = {
            "cpu": str(os.cpu_count() or 1),
            "memory": f"{memory}Ki",
            "pods": "110",
            "ephemeral-storage": "100Gi",
        }
        conditions = [
            {"type": kind, "status": status, "reason": reason, "message": message,
             "lastHeartbeatTime": stamp, "lastTransitionTime": self.since}
            for kind, status, reason, message in CONDITIONS
        ]  # fmt: skip
        return {
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": conditions,
            "addresses": [
                {"type": "InternalIP", "address": self.address},
                {"type": "Hostname", "address": NODE},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}},
            "nodeInfo": {
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
                "kernelVersion": platform.release(),
                "osImage": "gaggle test node",
                "containerRuntimeVersion": "gaggle-netns://1",
                "kubeletVersion": VERSION,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        }

    async def register(self) -> None:
        labels = {
            "kubernetes.io/hostname": NODE,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
        }
        body = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": NODE, "labels": labels}, "spec": {}}  # fmt: skip
        try:
            node = await self.client.create("/api/v1/nodes", body)
        except ApiError as error:
            if error.code != 409:
                raise
            node = await self.client.get(f"/api/v1/nodes/{NODE}")
        self.uid = node["metadata"]["uid"]
        await self.client.patch(f"/api/v1/nodes/{NODE}/status", {"status": self.status()})
        owner = {"apiVersion": "v1", "kind": "Node", "name": NODE, "uid": self.uid}
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": NODE, "ownerReferences": [owner]},
            "spec": {
                "holderIdentity": NODE,
                "leaseDurationSeconds": LEASE_SECONDS,
                "renewTime": _micro(),
            },
        }
        for _ in range(50):  # the namespace is made by the API server shortly after start
            try:
                await self.client.create(LEASES, lease)
                return
            except ApiError as error:
                if error.code == 409:
                    return
                if error.code != 404:
                    raise
                await asyncio.sleep(0.1)

    async def heartbeat(self) -> None:
        beats = 0
        while True:
            await asyncio.sleep(10)
            beats += 1
            with contextlib.suppress(ApiError, OSError, TimeoutError):
                await self.client.patch(f"{LEASES}/{NODE}", {"spec": {"renewTime": _micro()}})
                if beats % 4 == 0:
                    status = {"status": self.status()}
                    await self.client.patch(f"/api/v1/nodes/{NODE}/status", status)
