"""Our node: the one home-made part of the test cluster, a kubelet without a container runtime.

No container runtime can run on these machines, so this stands in for the kubelet of one node
(``gaggle-node``) as closely as we could make it, against the real API server and with a real
kubelet's own credentials (``system:node:gaggle-node`` in ``system:nodes``, so the Node
authorizer and NodeRestriction admission judge every request it makes):

- it registers its Node and keeps its Lease (``node``);
- it runs the pods the real scheduler binds to it (``pod``: processes in a network and mount
  namespace each, as the pod's user), writes ``pods/status``, and on deletion stops the
  containers (SIGTERM, SIGKILL after the grace period) before the final delete;
- it asks the TokenRequest API for each pod's ServiceAccount token (audience and expiry as the
  projected volume says, bound to the pod) and lays out ConfigMap, Secret, projected and
  downwardAPI volumes as the real kubelet's atomic writer does, re-syncing them every few
  seconds while the pod runs (a changed ConfigMap reaches a running pod, atomically);
- it gives containers the Service environment variables of their namespace, the cluster DNS in
  their resolv.conf and a kubelet-style hosts file (``network``), and serves
  ``/containerLogs`` to the API server (``endpoint``), so ``kubectl logs`` works.

Not a kubelet in this: no images (see ``pod``), no probes, no resource accounting or eviction,
no exec/attach/port-forward, no static pods, no init or sidecar containers.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tests.cluster.client import ApiError, Client, Obj
from tests.cluster.endpoint import serve
from tests.cluster.network import Network
from tests.cluster.node import NODE, Node, now
from tests.cluster.pki import Pair
from tests.cluster.pod import PodRun
from tests.cluster.volumes import service_links

VOLUME_SYNC = 3.0  # seconds between re-syncs of a running pod's API-backed volumes


class Kubelet:
    def __init__(
        self,
        client: Client,
        net: Network,
        workdir: Path,
        venv_bin: Path,
        serving: Pair,
        ca: Path,
        dns_ip: str,
    ) -> None:
        self.client, self.net, self.workdir, self.venv_bin = client, net, workdir, venv_bin
        self.serving, self.ca, self.dns_ip = serving, ca, dns_ip
        # where volumes are bound before they go to their mountPaths: not under /tmp, which a
        # pod may mount a volume over (see volumes.mount_script)
        self.stage = net.stage
        # what stands in for the image's filesystem: the virtualenv and the checkout it runs
        stand_ins = {venv_bin.parent.resolve(), Path(__file__).resolve().parents[2]}
        self.image_paths = tuple(
            p for p in sorted(stand_ins) if not any(q in p.parents for q in stand_ins)
        )
        self.runs: dict[str, PodRun] = {}  # by pod uid
        self.mount_points: collections.Counter[Path] = collections.Counter()
        self.services: dict[tuple[str, str], Obj] = {}  # (namespace, name) -> Service
        self.tokens: dict[tuple[str, str, int], tuple[bytes, float]] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self.port = 0
        self._runner: Any = None  # the HTTPS endpoint's (see endpoint)
        self.on_attach: list[Any] = []  # callbacks (netns, pod, ip) -> awaitable: proxy, policy

    @property
    def host_ip(self) -> str:
        return self.net.host_ip

    # -- life cycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.workdir.chmod(0o755)
        self._runner, self.port = await serve(self)
        self.node = Node(self.client, self.host_ip, self.port)
        await self.node.register()
        self._spawn(self.node.heartbeat())
        self._spawn(self._watch_pods())
        self._spawn(self._watch_services())
        self._spawn(self._sync_volumes())

    async def stop(self) -> None:
        """Kill every pod (1 s grace), then free every namespace and mount point."""
        await asyncio.gather(*(run.terminate(1) for run in list(self.runs.values())))
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for path in list(self.mount_points):
            self._remove_mount_point(path)
        if self._runner is not None:
            await self._runner.cleanup()

    def _spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    # -- pods ------------------------------------------------------------------------------------

    async def _watch_pods(self) -> None:
        async for kind, pod in self.client.watch(
            "/api/v1/pods", fieldSelector=f"spec.nodeName={NODE}"
        ):
            if kind == "SYNCED":
                continue
            meta = pod["metadata"]
            run = self.runs.get(meta["uid"])
            if kind == "DELETED":
                if run is not None:
                    self.runs.pop(run.uid, None)
                    self._spawn(self._forget(run))
                continue
            if run is None:
                if meta.get("deletionTimestamp"):
                    self._spawn(self._final_delete(pod))
                elif pod.get("status", {}).get("phase") not in ("Succeeded", "Failed"):
                    run = PodRun(self, pod)
                    self.runs[run.uid] = run
                    run.task = self._spawn(run.run())
                continue
            if meta.get("deletionTimestamp") and not run.terminating.is_set():
                self._spawn(self._delete(run, meta.get("deletionGracePeriodSeconds", 30)))

    async def _delete(self, run: PodRun, grace: float) -> None:
        await run.terminate(grace)
        await self._final_delete(run.pod)

    async def _final_delete(self, pod: Obj) -> None:
        meta = pod["metadata"]
        body = {"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}}
        with contextlib.suppress(ApiError):
            await self.client.delete(
                f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}", body
            )

    async def _forget(self, run: PodRun) -> None:
        await run.terminate(0)
        await asyncio.to_thread(_remove_tree, run.folder)

    async def write_status(self, run: PodRun, status: Obj) -> None:
        path = f"/api/v1/namespaces/{run.namespace}/pods/{run.name}/status"
        with contextlib.suppress(ApiError):  # gone, or a new pod of that name: not ours
            await self.client.patch(path, {"metadata": {"uid": run.uid}, "status": status})

    def event(self, run: PodRun, reason: str, message: str, kind: str = "Normal") -> None:
        body = {
            "metadata": {"generateName": f"{run.name}."},
            "involvedObject": {
                "kind": "Pod",
                "namespace": run.namespace,
                "name": run.name,
                "uid": run.uid,
                "apiVersion": "v1",
            },
            "reason": reason,
            "message": message,
            "type": kind,
            "source": {"component": "kubelet", "host": NODE},
            "firstTimestamp": now(),
            "lastTimestamp": now(),
            "count": 1,
            "reportingComponent": "kubelet",
            "reportingInstance": NODE,
        }

        async def post() -> None:
            with contextlib.suppress(ApiError, OSError, TimeoutError):
                await self.client.create(f"/api/v1/namespaces/{run.namespace}/events", body)

        self._spawn(post())

    async def attached(self, netns: str, pod: Obj, ip: str) -> None:
        """A pod's network namespace exists: let the service proxy and the policy agent write
        their rules there, before its containers start."""
        for callback in self.on_attach:
            await callback(netns, pod, ip)

    # -- tokens, volumes and Service variables --------------------------------------------------

    async def request_token(self, run: PodRun, source: Obj) -> bytes:
        account = run.pod["spec"].get("serviceAccountName") or "default"
        audience = source.get("audience", "")
        seconds = int(source.get("expirationSeconds", 3607))
        key = (run.uid, audience, seconds)
        cached = self.tokens.get(key)
        if cached is not None and cached[1] > time.time() + seconds * 0.2:
            return cached[0]
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": [audience] if audience else None,
                "expirationSeconds": seconds,
                "boundObjectRef": {
                    "kind": "Pod",
                    "apiVersion": "v1",
                    "name": run.name,
                    "uid": run.uid,
                },
            },
        }
        path = f"/api/v1/namespaces/{run.namespace}/serviceaccounts/{account}/token"
        answer = await self.client.create(path, body)
        token = answer["status"]["token"].encode()
        self.tokens[key] = (token, time.time() + seconds)
        return token

    async def _sync_volumes(self) -> None:
        while True:
            await asyncio.sleep(VOLUME_SYNC)
            for run in list(self.runs.values()):
                if run.phase == "Running" and not run.terminating.is_set():
                    with contextlib.suppress(Exception):  # the next sync tries again
                        await run.refresh_volumes()

    async def _watch_services(self) -> None:
        async for kind, svc in self.client.watch("/api/v1/services"):
            if kind == "SYNCED":
                continue
            key = (svc["metadata"]["namespace"], svc["metadata"]["name"])
            if kind == "DELETED":
                self.services.pop(key, None)
            else:
                self.services[key] = svc

    def service_env(self, namespace: str, pod: Obj) -> dict[str, str]:
        return service_links(self.services, namespace, pod)

    # -- mounts ----------------------------------------------------------------------------------

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
        removing the folder on the host would unmount it inside that pod (Linux ≥ 3.18)."""
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
        if run.netns:
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


def binding_under(path: Path, runs: Iterable[PodRun]) -> list[PodRun]:
    """The pods still running that bind a volume at ``path`` or below it."""
    return [
        run
        for run in runs
        if not run.finished and any(t == path or path in t.parents for t in run.mount_targets)
    ]


def _remove_tree(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
