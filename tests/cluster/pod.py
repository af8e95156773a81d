"""One pod's life on the local kubelet: its containers as local processes, its status as a kubelet
reports it.

Each container runs its ``command`` + ``args`` (``$(VAR)`` expanded) with the environment of
``volumes.environment``; PATH starts with the project's virtualenv, which stands in for the image
(the image name is recorded, never pulled; a container without ``command`` runs ``gaggle``, the
project image's entrypoint). The working directory is ``workingDir``, else a scratch folder of the
pod. In netns mode the process runs in the pod's network namespace and a private mount namespace
where its volumes are bound at their mountPaths, its ServiceAccount's token with them (see
``serviceaccount``: the API's address is in every container's environment); it runs as root on
the host's filesystem otherwise (no image filesystem, no users, no resource limits, no probes: a
running container is ready).

Status: Pending (ContainerCreating; waiting while a referenced ConfigMap or Secret is missing)
→ Running (podIP, Ready, complete containerStatuses) → Succeeded / Failed with each container's
exitCode and ``terminated.reason`` (Completed, Error). ``restartPolicy`` Always / OnFailure
restart a container with a backoff (0.5 s doubling to 10 s; CrashLoopBackOff meanwhile), Never
does not. Deleting the pod sends SIGTERM to each container's process group, SIGKILL after the
grace period, then removes the pod. Init containers, ephemeral containers and sidecars are not
run.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.cluster import serviceaccount
from tests.cluster.network import STATE
from tests.cluster.store import Obj, now
from tests.cluster.volumes import NotReady, environment, expand, materialise, mount_script

if TYPE_CHECKING:
    from tests.cluster.kubelet import Kubelet

ENTRYPOINT = ["gaggle"]
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def image_id(image: str) -> str:
    digest = hashlib.sha256(image.encode()).hexdigest()
    return f"{image.split(':')[0]}@sha256:{digest}"


class PodRun:
    def __init__(self, kubelet: Kubelet, pod: Obj) -> None:
        self.kubelet = kubelet
        self.pod = pod
        meta = pod["metadata"]
        self.uid, self.namespace, self.name = meta["uid"], meta["namespace"], meta["name"]
        self.folder = kubelet.workdir / f"{self.namespace}_{self.name}_{self.uid[:8]}"
        self.containers: list[Obj] = pod["spec"].get("containers") or []
        self.processes: dict[str, asyncio.subprocess.Process] = {}
        self.states: dict[str, Obj] = {c["name"]: {"waiting": {"reason": "ContainerCreating"}}
                                       for c in self.containers}  # fmt: skip
        self.last: dict[str, Obj] = {}
        self.restarts: dict[str, int] = {c["name"]: 0 for c in self.containers}
        self.phase = "Pending"
        self.netns = ""
        self.ip = ""
        self.started_at = now()
        self.mount_points: list[Path] = []
        self.mount_targets: list[Path] = []  # where its containers bind volumes
        self.volumes: dict[str, Path] = {}
        self.token_volume = ""  # the service account volume's name, when the pod has one
        self.terminating = asyncio.Event()
        self.finished = False  # no process runs or will run any more
        self.task: asyncio.Task[None] | None = None

    # -- running ---------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._prepare()
            if self.terminating.is_set():
                return
            codes = await asyncio.gather(*(self._container(c) for c in self.containers))
            if not self.terminating.is_set():
                self.phase = "Succeeded" if all(code == 0 for code in codes) else "Failed"
        except Exception as error:  # the pod fails, the kubelet goes on
            self.phase = "Failed"
            for name in self.states:
                self.states[name] = {"terminated": self._ended(1, "StartError", str(error))}
        finally:
            self.finished = True
            self.kubelet.report(self)
            await self.kubelet.release(self)

    async def _prepare(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "root").mkdir(exist_ok=True)
        net = self.kubelet.net
        if net is not None:
            self.netns, self.ip = await asyncio.to_thread(net.attach)
            self.kubelet.write_hosts(self.namespace)  # before any process may look a name up
        else:
            self.ip = "127.0.0.1"
        while True:
            try:
                self.volumes = materialise(self.kubelet.store, self.pod, self.folder / "volumes")
                self._service_account()
                for container in self.containers:
                    environment(self.kubelet.store, self.pod, container, {})
                return
            except NotReady as missing:
                for name in self.states:
                    self.states[name] = {
                        "waiting": {"reason": "CreateContainerConfigError", "message": str(missing)}
                    }
                self.kubelet.report(self)
                try:
                    await asyncio.wait_for(self.terminating.wait(), 0.5)
                    return
                except TimeoutError:
                    continue

    def _service_account(self) -> None:
        """Token, CA and namespace as one more volume (bind mounts need netns mode)."""
        api, name = self.kubelet.api, f"kube-api-access-{self.uid[:5]}"
        if api is None or self.kubelet.net is None:
            return
        folder = self.folder / "volumes" / name
        if serviceaccount.materialise(self.kubelet.store, self.pod, folder, api) is not None:
            self.volumes[name] = folder
            self.token_volume = name

    async def _container(self, container: Obj) -> int:
        name = container["name"]
        policy = self.pod["spec"].get("restartPolicy", "Always")
        backoff = 0.5
        while True:
            process = await self._launch(container)
            started = now()
            self.states[name] = {"running": {"startedAt": started}}
            if self.phase == "Pending" and all("running" in s for s in self.states.values()):
                self.phase = "Running"
            self.kubelet.report(self)
            self.kubelet.event(self, "Started", f"Started container {name}")
            code = await process.wait()
            code = 128 - code if code < 0 else code  # killed by a signal
            reason = "Completed" if code == 0 else "Error"
            self.states[name] = {"terminated": {**self._ended(code, reason), "startedAt": started}}
            restart = policy == "Always" or (policy == "OnFailure" and code != 0)
            if self.terminating.is_set() or not restart:
                self.kubelet.report(self)
                return code
            self.last[name] = self.states[name]
            self.restarts[name] += 1
            self.states[name] = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}}
            self.kubelet.report(self)
            try:
                await asyncio.wait_for(self.terminating.wait(), backoff)
                return code
            except TimeoutError:
                backoff = min(backoff * 2, 10)

    def _ended(self, code: int, reason: str, message: str = "") -> Obj:
        ended = {"exitCode": code, "reason": reason, "startedAt": self.started_at}
        return {**ended, "finishedAt": now(), **({"message": message} if message else {})}

    async def _launch(self, container: Obj) -> asyncio.subprocess.Process:
        kubelet = self.kubelet
        name = container["name"]
        base = {
            "PATH": f"{kubelet.venv_bin}:{SYSTEM_PATH}",
            "HOME": "/root",
            "HOSTNAME": self.name,
            "VIRTUAL_ENV": str(kubelet.venv_bin.parent),
            **(kubelet.api.env() if kubelet.api is not None else {}),
        }
        env = environment(kubelet.store, self._current(), container, base)
        argv = [expand(a, env) for a in (container.get("command") or ENTRYPOINT)]
        argv += [expand(a, env) for a in container.get("args") or []]
        workdir = container.get("workingDir") or str(self.folder / "root")
        if self.token_volume:
            container = serviceaccount.with_mount(container, self.token_volume)
        stage = STATE / "stage" / f"{self.pod['metadata'].get('uid', self.name)}-{name}"
        mounts, created = mount_script(self.pod, container, self.volumes, stage)
        if mounts and kubelet.net is None:
            raise RuntimeError("volumeMounts need netns mode (root): they are bind mounts")
        targets = [Path(m["mountPath"]) for m in container.get("volumeMounts") or []]
        self.mount_targets += targets
        kubelet.claim_mount_points(self, created, targets)
        # set -e: a mount that fails fails the container, as a real runtime refuses to start it
        script = f'set -e\n{mounts}\nmkdir -p "$0" && cd "$0" && exec "$@"'
        command = ["/bin/sh", "-c", script, workdir, *argv]
        if kubelet.net is not None:
            command = kubelet.net.command(self.netns, command)
        log = self.log_path(name, self.restarts[name])
        with log.open("ab") as out:
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self.processes[name] = process
        return process

    def _current(self) -> Obj:
        """The pod as stored now (status.podIP included), for fieldRefs."""
        pod = dict(self.pod)
        pod["status"] = {**pod.get("status", {}), "podIP": self.ip, "hostIP": self.kubelet.host_ip}
        return pod

    def log_path(self, container: str, restart: int) -> Path:
        return self.folder / f"{container}-{restart}.log"

    # -- stopping --------------------------------------------------------------------------------

    def _signal(self, sig: int) -> None:
        for process in self.processes.values():
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, sig)  # the group we started, led by our own child

    async def terminate(self, grace: float) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; returns when the pod is wound down."""
        first = not self.terminating.is_set()
        self.terminating.set()
        if first:
            self.kubelet.event(self, "Killing", "Stopping the pod's containers")
        self._signal(signal.SIGTERM)
        waiting = [p.wait() for p in self.processes.values() if p.returncode is None]
        if waiting:
            _, pending = await asyncio.wait(
                [asyncio.ensure_future(w) for w in waiting], timeout=grace
            )
            if pending:
                self._signal(signal.SIGKILL)
                await asyncio.wait(pending)
        if self.task is not None:
            await asyncio.shield(self.task)

    # -- reporting -------------------------------------------------------------------------------

    def status(self) -> Obj:
        running = self.phase == "Running" and not self.terminating.is_set()
        statuses = []
        for container in self.containers:
            name = container["name"]
            state = self.states[name]
            process = self.processes.get(name)
            cid = f"gaggle://{self.uid[:8]}-{name}-{process.pid if process else 0}"
            ready = running and "running" in state
            if "terminated" in state:
                state = {"terminated": {**state["terminated"], "containerID": cid}}
            statuses.append(
                {
                    "name": name,
                    "image": container.get("image", ""),
                    "imageID": image_id(container.get("image", "")),
                    "containerID": cid,
                    "ready": ready,
                    "started": "running" in state,
                    "restartCount": self.restarts[name],
                    "state": state,
                    "lastState": self.last.get(name, {}),
                }
            )
        ready = all(s["ready"] for s in statuses) and bool(statuses)
        stamp = now()

        def condition(kind: str, ok: bool) -> Obj:
            value = "True" if ok else "False"
            return {"type": kind, "status": value, "lastTransitionTime": stamp}

        status: dict[str, Any] = {
            "phase": self.phase,
            "conditions": [
                condition("PodReadyToStartContainers", bool(self.ip)),
                condition("Initialized", True),
                condition("Ready", ready),
                condition("ContainersReady", ready),
                condition("PodScheduled", True),
            ],
            "hostIP": self.kubelet.host_ip,
            "hostIPs": [{"ip": self.kubelet.host_ip}],
            "startTime": self.started_at,
            "containerStatuses": statuses,
            "qosClass": "BestEffort",
        }
        if self.ip:
            status.update(podIP=self.ip, podIPs=[{"ip": self.ip}])
        return status
