"""One pod's life on our node: its containers as local processes, its status as a kubelet
reports it.

The image is not pulled: this machine's Python and the project's virtualenv stand in for it
(PATH starts with the venv's bin; a container without ``command`` runs ``gaggle``, our image's
entrypoint; the image's ``ENV`` — HOME=/tmp, PYTHONUNBUFFERED, PYTHONDONTWRITEBYTECODE — and
``USER 10001`` apply unless the pod says otherwise). Each container runs ``command`` + ``args``
(``$(VAR)`` expanded) with the environment of ``volumes.environment``, in the pod's network
namespace and a private mount namespace where its volumes are bound at their mountPaths; the
root filesystem is remounted read-only there for ``readOnlyRootFilesystem``. It runs as the
pod's or container's ``runAsUser``/``runAsGroup`` (with ``fsGroup`` and ``supplementalGroups``),
refused with CreateContainerConfigError when ``runAsNonRoot`` meets uid 0. Where this is not a
container: it sees the host's filesystem (read-only or not), keeps CAP_DAC_READ_SEARCH so that
uid 10001 can read the host's Python under /root (writes are checked as for that uid, other
capabilities are dropped), has no cgroup limits, no seccomp, and no probes (a running container
is ready).

Status: Pending (ContainerCreating; CreateContainerConfigError while a referenced ConfigMap or
Secret is missing) → Running (podIP, Ready, containerStatuses sorted by name) → Succeeded /
Failed with each container's exitCode and ``terminated.reason`` (Completed, Error). restartPolicy
Always / OnFailure restart a container with the kubelet's back-off (10 s doubling to 5 min,
CrashLoopBackOff meanwhile; ``BACKOFF`` scales it for tests), Never does not. Deletion sends
SIGTERM to each container's process group, SIGKILL after the grace period. Init containers,
sidecars and ephemeral containers are not run.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.cluster.client import Obj
from tests.cluster.node import now
from tests.cluster.volumes import (
    NotReady,
    Sources,
    environment,
    expand,
    mount_script,
    volume_files,
    write_atomic,
)

if TYPE_CHECKING:
    from tests.cluster.kubelet import Kubelet

ENTRYPOINT = ["gaggle"]
IMAGE_USER = 10001  # our image's USER
IMAGE_ENV = {"HOME": "/tmp", "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
IMAGE_WORKDIR = "/tmp"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BACKOFF = (10.0, 300.0)  # the kubelet's crash back-off: first delay, cap


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
        self.containers: list[Obj] = sorted(
            pod["spec"].get("containers") or [], key=lambda c: str(c["name"])
        )
        self.processes: dict[str, asyncio.subprocess.Process] = {}
        self.states: dict[str, Obj] = {
            c["name"]: {"waiting": {"reason": "ContainerCreating"}} for c in self.containers
        }
        self.last: dict[str, Obj] = {}
        self.restarts: dict[str, int] = {c["name"]: 0 for c in self.containers}
        self.phase = "Pending"
        self.reason = ""
        self.netns = ""
        self.ip = ""
        self.started_at = now()
        self.mount_points: list[Path] = []
        self.mount_targets: list[Path] = []  # where its containers bind volumes
        self.volumes: dict[str, Path] = {}
        self.sources = Sources({})
        self.terminating = asyncio.Event()
        self.finished = False  # no process runs or will run any more
        self.task: asyncio.Task[None] | None = None
        self._report = asyncio.Lock()

    # -- running ---------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._prepare()
            if self.terminating.is_set():
                return
            codes = await asyncio.gather(*(self._container(c) for c in self.containers))
            if not self.terminating.is_set():
                self.phase = "Succeeded" if all(code == 0 for code in codes) else "Failed"
        except Exception as error:  # the pod fails, the node goes on
            self.phase = "Failed"
            for name in self.states:
                self.states[name] = {"terminated": self._ended(128, "StartError", str(error))}
        finally:
            self.finished = True
            await self.report()
            await self.kubelet.release(self)

    async def _prepare(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o755)
        net = self.kubelet.net
        self.netns, self.ip = await asyncio.to_thread(net.attach, self.pod, self.kubelet.dns_ip)
        await self.kubelet.attached(self.netns, self.pod, self.ip)
        await self.report()
        while True:
            try:
                await self.refresh_volumes()
                for container in self.containers:
                    environment(self.sources, self._current(), container, {})
                    self._identity(container)
                return
            except NotReady as missing:
                for name in self.states:
                    self.states[name] = {
                        "waiting": {"reason": "CreateContainerConfigError", "message": str(missing)}
                    }
                await self.report()
                if await _wait(self.terminating, 1.0):
                    return

    async def refresh_volumes(self) -> None:
        """Fetch the referenced ConfigMaps and Secrets and (re)write the API-backed volumes:
        at start, then every few seconds while the pod runs (what a kubelet's sync does)."""
        self.sources = await Sources.fetch(self.kubelet.client, self.pod)
        tokens: dict[tuple[str, str], bytes] = {}
        for volume in self.pod["spec"].get("volumes") or []:
            for source in (volume.get("projected") or {}).get("sources") or []:
                if "serviceAccountToken" in source:
                    sat = source["serviceAccountToken"]
                    tokens[(volume["name"], sat["path"])] = await self.kubelet.request_token(
                        self, sat
                    )
        owner = self._volume_owner()
        for volume in self.pod["spec"].get("volumes") or []:
            name = volume["name"]
            if "hostPath" in volume:
                self.volumes[name] = Path(volume["hostPath"]["path"])
                continue
            target = self.folder / "volumes" / name
            files = volume_files(
                self.sources,
                self._current(),
                volume,
                lambda sat, volume=name: tokens[(volume, sat["path"])],  # type: ignore[misc]
            )
            if files is None:  # emptyDir and other scratch space: writable by anyone
                if not target.exists():
                    target.mkdir(parents=True)
                    target.chmod(0o777)
            else:
                await asyncio.to_thread(write_atomic, target, files, owner)
            self.volumes[name] = target

    def _volume_owner(self) -> tuple[int, int] | None:
        group = (self.pod["spec"].get("securityContext") or {}).get("fsGroup")
        return (0, int(group)) if group is not None else None

    def _identity(self, container: Obj) -> tuple[int, int, list[int]]:
        """uid, gid and supplementary groups the container runs as (NotReady if refused)."""
        pod_ctx = self.pod["spec"].get("securityContext") or {}
        ctx = {**pod_ctx, **(container.get("securityContext") or {})}
        uid = int(ctx.get("runAsUser", IMAGE_USER))
        gid = int(ctx.get("runAsGroup", uid if "runAsUser" in ctx else IMAGE_USER))
        if ctx.get("runAsNonRoot") and uid == 0:
            raise NotReady("container has runAsNonRoot and image will run as root")
        groups = [int(g) for g in pod_ctx.get("supplementalGroups") or []]
        if pod_ctx.get("fsGroup") is not None:
            groups.append(int(pod_ctx["fsGroup"]))
        return uid, gid, groups

    async def _container(self, container: Obj) -> int:
        name = container["name"]
        policy = self.pod["spec"].get("restartPolicy", "Always")
        backoff, cap = BACKOFF
        while True:
            process = await self._launch(container)
            started = now()
            self.states[name] = {"running": {"startedAt": started}}
            if self.phase == "Pending" and all("running" in s for s in self.states.values()):
                self.phase = "Running"
            await self.report()
            self.kubelet.event(self, "Started", f"Started container {name}")
            code = await process.wait()
            code = 128 - code if code < 0 else code  # killed by a signal
            reason = "Completed" if code == 0 else "Error"
            self.states[name] = {"terminated": {**self._ended(code, reason), "startedAt": started}}
            restart = policy == "Always" or (policy == "OnFailure" and code != 0)
            if self.terminating.is_set() or not restart:
                await self.report()
                return code
            self.last[name] = self.states[name]
            self.restarts[name] += 1
            message = f"back-off {backoff:g}s restarting failed container={name} pod={self.name}"
            self.states[name] = {"waiting": {"reason": "CrashLoopBackOff", "message": message}}
            await self.report()
            if await _wait(self.terminating, backoff):
                return code
            backoff = min(backoff * 2, cap)

    def _ended(self, code: int, reason: str, message: str = "") -> Obj:
        ended = {"exitCode": code, "reason": reason, "startedAt": self.started_at}
        return {**ended, "finishedAt": now(), **({"message": message} if message else {})}

    async def _launch(self, container: Obj) -> asyncio.subprocess.Process:
        kubelet = self.kubelet
        name = container["name"]
        base = {
            "PATH": f"{kubelet.venv_bin}:{SYSTEM_PATH}",
            **IMAGE_ENV,
            "HOSTNAME": self.name,
            "VIRTUAL_ENV": str(kubelet.venv_bin.parent),
            **kubelet.service_env(self.namespace, self.pod),
        }
        env = environment(self.sources, self._current(), container, base)
        argv = [expand(a, env) for a in (container.get("command") or ENTRYPOINT)]
        argv += [expand(a, env) for a in container.get("args") or []]
        workdir = container.get("workingDir") or IMAGE_WORKDIR
        stage = kubelet.stage / f"{self.uid}-{name}"
        mounts, created = mount_script(container, self.volumes, stage, kubelet.image_paths)
        targets = [Path(m["mountPath"]) for m in container.get("volumeMounts") or []]
        self.mount_targets += targets
        kubelet.claim_mount_points(self, created, targets)
        ctx = {
            **(self.pod["spec"].get("securityContext") or {}),
            **(container.get("securityContext") or {}),
        }
        read_only = "mount -o remount,bind,ro /" if ctx.get("readOnlyRootFilesystem") else ""
        uid, gid, groups = self._identity(container)
        become = ["setpriv", f"--reuid={uid}", f"--regid={gid}"]
        become += [f"--groups={','.join(map(str, groups))}"] if groups else ["--clear-groups"]
        if uid != 0:  # see the module's docstring: read the host's Python under /root
            become += [
                "--inh-caps=-all,+dac_read_search",
                "--ambient-caps=+dac_read_search",
                "--bounding-set=-all,+dac_read_search",
            ]
        if ctx.get("allowPrivilegeEscalation") is False:
            become.append("--no-new-privs")
        # set -e: a mount that fails fails the container, as a real runtime refuses to start it
        script = f'set -e\n{mounts}\nmkdir -p "$0"\n{read_only}\ncd "$0"\nexec "$@"'
        command = kubelet.net.command(
            self.netns, ["/bin/sh", "-c", script, workdir, *become, "--", *argv]
        )
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
        """The pod as it runs (status.podIP and hostIP included), for fieldRefs."""
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
        if first and self.processes:
            for name in self.processes:
                self.kubelet.event(self, "Killing", f"Stopping container {name}")
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

    async def report(self) -> None:
        """Write the pod's status as the node sees it now (in order: one write at a time)."""
        async with self._report:
            await self.kubelet.write_status(self, self.status())

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
            entry: dict[str, Any] = {
                "name": name,
                "image": container.get("image", ""),
                "imageID": image_id(container.get("image", "")) if process else "",
                "ready": ready,
                "started": "running" in state,
                "restartCount": self.restarts[name],
                "state": state,
                "lastState": self.last.get(name, {}),
            }
            if process is not None:
                entry["containerID"] = cid
            statuses.append(entry)
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
        }
        if self.ip:
            status.update(podIP=self.ip, podIPs=[{"ip": self.ip}])
        return status


async def _wait(event: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(event.wait(), seconds)
        return True
    except TimeoutError:
        return False
