"""The local kubelet: every Pod created runs on this machine (one node, ``gaggle-node``).

It watches the store in-process: a new Pod is bound to the node at once and run (see ``pod``);
a Pod's deletion winds its containers down (SIGTERM, SIGKILL after the grace period) before the
Pod is removed; Services and Pods of a namespace, and the API's in-cluster names, are kept
resolvable in every pod's hosts file (see ``network``, ``serviceaccount``): pods get the API's
address and their ServiceAccount's token as a kubelet gives them. ``kubectl logs`` (``-f``,
``--tail``, ``--previous``, ``-c``) reads the containers' output. Not emulated: scheduling (one
node, no resources, no taints or affinity), probes, exec/attach/port-forward,
Deployments/ReplicaSets/StatefulSets/Jobs (stored, never run: the operator uses plain Pods),
Service cluster IPs (every Service is headless here).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from tests.cluster import network
from tests.cluster.pod import PodRun
from tests.cluster.resources import Resource
from tests.cluster.selectors import matches_label_selector
from tests.cluster.serviceaccount import Endpoint
from tests.cluster.store import ApiError, Change, Obj, Store, now

NODE = "gaggle-node"


def _default_pod(pod: Obj) -> None:
    spec = pod.setdefault("spec", {})
    spec.setdefault("nodeName", NODE)
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", "default")
    for container in spec.get("containers") or []:
        container.setdefault("imagePullPolicy", "IfNotPresent")
        container.setdefault("terminationMessagePolicy", "File")
    stamp = now()
    scheduled = {"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp}
    pod["status"] = {"phase": "Pending", "conditions": [scheduled], "qosClass": "BestEffort"}


def _default_service(svc: Obj) -> None:
    spec = svc.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("clusterIP", "None")
    spec.setdefault("clusterIPs", [spec["clusterIP"]])
    spec.setdefault("sessionAffinity", "None")
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
    svc["status"] = {"loadBalancer": {}}


def _default_secret(secret: Obj) -> None:
    data = secret.setdefault("data", {})
    for key, value in (secret.pop("stringData", None) or {}).items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    secret.setdefault("type", "Opaque")


class Kubelet:
    def __init__(self, store: Store, workdir: Path, venv_bin: Path, mode: str = "auto") -> None:
        self.store, self.workdir, self.venv_bin = store, workdir, venv_bin
        why_not = network.usable() if mode != "host" else "host networking was asked for"
        if mode == "netns" and why_not:
            raise RuntimeError(f"netns mode {why_not}")
        self.net = network.Network() if why_not is None else None
        self.why_not_netns = why_not
        self.api: Endpoint | None = None  # where pods reach the API (set by the Cluster)
        self.runs: dict[str, PodRun] = {}  # by pod uid
        self.mount_points: collections.Counter[Path] = collections.Counter()
        self.refreshing: set[str] = set()
        self.tasks: set[asyncio.Task[Any]] = set()
        store.defaulters["/pods"] = _default_pod
        store.defaulters["/services"] = _default_service
        store.defaulters["/secrets"] = _default_secret
        store.hooks.append(self.on_change)
        store.lingering.append(self.lingering)

    @property
    def host_ip(self) -> str:
        """Where pods reach the host (the bridge's address in netns mode)."""
        return self.net.host_ip if self.net is not None else "127.0.0.1"

    def describe(self) -> str:
        if self.net is None:
            return f"processes on the host's network ({self.why_not_netns})"
        return f"own network namespaces on {self.net.subnet}.0/24, host at {self.host_ip}"

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.net is not None:
            await asyncio.to_thread(self.net.setup)
        res = self.store.registry.find("", "v1", "nodes")
        assert res is not None
        ready = {"type": "Ready", "status": "True", "reason": "KubeletReady"}
        address = {"type": "InternalIP", "address": self.host_ip}
        node = {
            "metadata": {"name": NODE},
            "status": {"conditions": [ready], "addresses": [address]},
        }
        made = self.store.create(res, "", node)
        self.store.update(res, "", NODE, {**made, "status": node["status"]}, subresource="status")

    async def stop(self) -> None:
        """Kill every pod (1 s grace), then remove every namespace, veth and hosts file."""
        await asyncio.gather(*(run.terminate(1) for run in list(self.runs.values())))
        for task in list(self.tasks):
            task.cancel()
        for path in list(self.mount_points):
            self._remove_mount_point(path)
        if self.net is not None:
            await asyncio.to_thread(self.net.teardown)

    def _spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    # -- reacting to the store -------------------------------------------------------------------

    def lingering(self, res: Resource, obj: Obj) -> bool:
        run = self.runs.get(obj["metadata"]["uid"]) if res.key == "/pods" else None
        return run is not None and not run.finished

    def on_change(self, change: Change) -> None:
        key = change.res.key
        if key not in ("/pods", "/services"):
            return
        meta = change.obj["metadata"]
        self.refresh_hosts(meta["namespace"])
        if key != "/pods":
            return
        run = self.runs.get(meta["uid"])
        if change.type == "ADDED" and run is None:
            run = PodRun(self, change.obj)
            self.runs[run.uid] = run
            run.task = self._spawn(run.run())
        elif change.type == "MODIFIED" and meta.get("deletionTimestamp") and run is not None:
            if not run.terminating.is_set():
                self._spawn(self._delete(run, meta.get("deletionGracePeriodSeconds", 30)))
        elif change.type == "DELETED" and run is not None:
            self.runs.pop(run.uid, None)
            self._spawn(self._forget(run))

    async def _delete(self, run: PodRun, grace: float) -> None:
        await run.terminate(grace)
        res = self.store.registry.find("", "v1", "pods")
        assert res is not None
        with contextlib.suppress(ApiError):
            self.store.delete(res, run.namespace, run.name, grace=0)

    async def _forget(self, run: PodRun) -> None:
        await run.terminate(0)
        shutil.rmtree(run.folder, ignore_errors=True)

    def report(self, run: PodRun) -> None:
        """Write the pod's status as the kubelet sees it now."""
        res = self.store.registry.find("", "v1", "pods")
        assert res is not None
        try:
            pod = self.store.get(res, run.namespace, run.name)
        except ApiError:
            return
        if pod["metadata"]["uid"] != run.uid:
            return
        pod["status"] = run.status()
        pod["metadata"].pop("resourceVersion", None)
        self.store.update(res, run.namespace, run.name, pod, subresource="status")

    def event(self, run: PodRun, reason: str, message: str) -> None:
        res = self.store.registry.find("", "v1", "events")
        assert res is not None
        involved = {"kind": "Pod", "namespace": run.namespace, "name": run.name, "uid": run.uid}
        body = {
            "metadata": {"generateName": f"{run.name}."},
            "involvedObject": {**involved, "apiVersion": "v1"},
            "reason": reason,
            "message": message,
            "type": "Normal",
            "source": {"component": "kubelet", "host": NODE},
            "firstTimestamp": now(),
            "lastTimestamp": now(),
            "count": 1,
        }
        with contextlib.suppress(ApiError):  # the namespace is going away
            self.store.create(res, run.namespace, body)

    # -- network and mounts ----------------------------------------------------------------------

    def refresh_hosts(self, namespace: str) -> None:
        if self.net is None or namespace in self.refreshing:
            return
        self.refreshing.add(namespace)
        asyncio.get_running_loop().call_soon(self.write_hosts, namespace)

    def write_hosts(self, namespace: str) -> None:
        self.refreshing.discard(namespace)
        if self.net is None:
            return
        pods_res = self.store.registry.find("", "v1", "pods")
        svc_res = self.store.registry.find("", "v1", "services")
        assert pods_res is not None
        assert svc_res is not None
        pods = self.store.list(pods_res, namespace)[0]
        serving = [
            p
            for p in pods
            if p.get("status", {}).get("phase") == "Running"
            and p["status"].get("podIP")
            and not p["metadata"].get("deletionTimestamp")
        ]
        lines = [self.api.hosts_line()] if self.api is not None else []
        for svc in self.store.list(svc_res, namespace)[0]:
            name = svc["metadata"]["name"]
            names = f"{name} {name}.{namespace} {name}.{namespace}.svc"
            names += f" {name}.{namespace}.svc.cluster.local"
            for pod in serving:
                labels = pod["metadata"].get("labels") or {}
                if matches_label_selector(svc.get("spec", {}).get("selector"), labels):
                    lines.append(f"{pod['status']['podIP']}\t{names}\n")
        for pod in serving:
            spec = pod.get("spec", {})
            if spec.get("hostname") and spec.get("subdomain"):
                fqdn = f"{spec['hostname']}.{spec['subdomain']}.{namespace}.svc.cluster.local"
                lines.append(f"{pod['status']['podIP']}\t{fqdn} {spec['hostname']}\n")
        for run in list(self.runs.values()):
            if run.namespace == namespace and run.netns and not run.finished:
                own = f"{run.ip}\t{run.name}\n"
                self.net.write_hosts(run.netns, own + "".join(lines))

    def claim_mount_points(self, run: PodRun, created: list[Path], targets: list[Path]) -> None:
        """Hold the mount points this pod makes, and those another pod made that this pod's
        targets lie in: else a pod that ends could remove /gaggle while this one mounts there."""
        shared = [p for p in self.mount_points if any(t == p or p in t.parents for t in targets)]
        for path in [*created, *shared]:
            if path not in run.mount_points:
                run.mount_points.append(path)
                self.mount_points[path] += 1

    async def release(self, run: PodRun) -> None:
        """A pod's processes are all gone: free its network namespace and mount points. A
        mount point that a running pod still binds a volume at or under passes to that pod:
        removing the folder on the host would unmount it inside that pod (Linux ≥ 3.18), and
        CI saw a manager pod lose its script so."""
        run.mount_targets.clear()
        for path in run.mount_points:
            self.mount_points[path] -= 1
            if self.mount_points[path] <= 0:
                heirs = binding_under(path, self.runs.values())
                for heir in heirs:
                    heir.mount_points.append(path)
                    self.mount_points[path] += 1
                if not heirs:
                    self._remove_mount_point(path)
        run.mount_points.clear()
        if self.net is not None and run.netns:
            await asyncio.to_thread(self.net.detach, run.netns)
            run.netns = ""

    def _remove_mount_point(self, path: Path) -> None:
        """Remove a mount point we created on the host, only if it is (still) empty."""
        del self.mount_points[path]
        if path.is_file() and path.stat().st_size == 0:
            path.unlink(missing_ok=True)
            return
        for folder, _, files in os.walk(path, topdown=False) if path.is_dir() else []:
            if not files:
                with contextlib.suppress(OSError):
                    os.rmdir(folder)

    # -- logs ------------------------------------------------------------------------------------

    async def logs(
        self,
        namespace: str,
        name: str,
        container: str | None,
        follow: bool,
        tail: int | None,
        previous: bool,
    ) -> AsyncIterator[bytes]:
        run = next(
            (r for r in self.runs.values() if (r.namespace, r.name) == (namespace, name)), None
        )
        if run is None or not run.containers:
            raise ApiError(400, "BadRequest", f'pod "{name}" has not been run')
        container = container or run.containers[0]["name"]
        if container not in run.restarts:
            raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {name}")
        restart = run.restarts[container] - (1 if previous else 0)
        path = run.log_path(container, restart)
        if restart < 0 or not path.exists():
            message = f'container "{container}" in pod "{name}" is waiting to start'
            raise ApiError(400, "BadRequest", message)
        data = path.read_bytes()
        if tail is not None:
            data = b"".join(data.splitlines(keepends=True)[-tail:]) if tail else b""
        yield data
        offset = path.stat().st_size
        while follow and not previous:
            process = run.processes.get(container)
            ended = process is None or process.returncode is not None
            size = path.stat().st_size
            if size > offset:
                with path.open("rb") as log:
                    log.seek(offset)
                    yield log.read(size - offset)
                offset = size
            elif ended or run.restarts[container] != restart:
                return
            else:
                await asyncio.sleep(0.1)


def binding_under(path: Path, runs: Iterable[PodRun]) -> list[PodRun]:
    """The pods still running that bind a volume at ``path`` or below it."""
    return [
        run
        for run in runs
        if not run.finished and any(t == path or path in t.parents for t in run.mount_targets)
    ]
