"""What a container sees besides its command: environment and volumes, as a kubelet makes them.

``Sources`` fetches, with the node's own credentials (the Node authorizer lets a node read only
what its pods reference), the ConfigMaps and Secrets a pod names; a missing one that is not
``optional`` keeps the pod waiting (``NotReady``, CreateContainerConfigError), as on a node.

Environment: ``env`` with ``value`` (``$(VAR)`` expanded), ``valueFrom.fieldRef``
(metadata.name/namespace/uid, labels and annotations by key, spec.nodeName,
spec.serviceAccountName, status.podIP/hostIP), ``configMapKeyRef`` and ``secretKeyRef``;
``envFrom`` with ``configMapRef``/``secretRef`` and ``prefix``; the Service links of the namespace
(``FOO_SERVICE_HOST`` …, when ``enableServiceLinks`` is not false) and always the ``kubernetes``
Service's. Not made: ``resourceFieldRef`` (gives "0").

Volumes are laid out as the kubelet's atomic writer does: the files in a timestamped folder
``..2026_12_01_19_40_05.123456789``, a ``..data`` symlink to it, and each top-level name a symlink
through ``..data``; an update writes a new folder and swaps ``..data`` with one rename, so a
reader sees the old files or the new, never half. ``configMap``, ``secret``, ``projected``
(serviceAccountToken, configMap, secret, downwardAPI), ``downwardAPI``, ``emptyDir`` (mode 0777)
and ``hostPath`` (the host's path itself). Not made: persistent volumes, CSI, ``image``.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.cluster.client import ApiError, Client, Obj


class NotReady(Exception):
    """A referenced ConfigMap, Secret or key is missing (the pod waits, as a kubelet does)."""


Key = tuple[str, str]  # ("configmaps" | "secrets", name)


def referenced(pod: Obj) -> set[Key]:
    """Every ConfigMap and Secret the pod's volumes and containers name."""
    found: set[Key] = set()
    spec = pod["spec"]
    for volume in spec.get("volumes") or []:
        if "configMap" in volume:
            found.add(("configmaps", volume["configMap"]["name"]))
        if "secret" in volume:
            found.add(("secrets", volume["secret"]["secretName"]))
        for source in (volume.get("projected") or {}).get("sources") or []:
            if "configMap" in source:
                found.add(("configmaps", source["configMap"]["name"]))
            if "secret" in source:
                found.add(("secrets", source["secret"]["name"]))
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        for source in container.get("envFrom") or []:
            if "configMapRef" in source:
                found.add(("configmaps", source["configMapRef"]["name"]))
            if "secretRef" in source:
                found.add(("secrets", source["secretRef"]["name"]))
        for item in container.get("env") or []:
            ref = item.get("valueFrom") or {}
            if "configMapKeyRef" in ref:
                found.add(("configmaps", ref["configMapKeyRef"]["name"]))
            if "secretKeyRef" in ref:
                found.add(("secrets", ref["secretKeyRef"]["name"]))
    return found


class Sources:
    """The data of the ConfigMaps and Secrets a pod references, fetched from the API."""

    def __init__(self, found: dict[Key, dict[str, bytes] | None]) -> None:
        self.found = found

    @classmethod
    async def fetch(cls, client: Client, pod: Obj) -> Sources:
        namespace = pod["metadata"]["namespace"]
        found: dict[Key, dict[str, bytes] | None] = {}
        for kind, name in sorted(referenced(pod)):
            try:
                obj = await client.get(f"/api/v1/namespaces/{namespace}/{kind}/{name}")
            except ApiError as error:
                if error.code != 404:
                    raise
                found[(kind, name)] = None
                continue
            found[(kind, name)] = _data(obj, kind == "secrets")
        return cls(found)

    def data(self, kind: str, name: str, optional: bool) -> dict[str, bytes] | None:
        data = self.found.get((kind, name))
        if data is None and not optional:
            raise NotReady(f'{kind[:-1]} "{name}" not found')
        return data


def _data(obj: Obj, secret: bool) -> dict[str, bytes]:
    if secret:
        return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    found = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
    found.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return found


_FIELD = re.compile(r"^metadata\.(labels|annotations)\['([^']+)'\]$")


def field_ref(pod: Obj, path: str) -> str:
    if m := _FIELD.match(path):
        return str((pod["metadata"].get(m.group(1)) or {}).get(m.group(2), ""))
    value: Any = pod
    for part in path.split("."):
        value = value.get(part, "") if isinstance(value, dict) else ""
    return str(value)


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion (``$$`` escapes; unknown references stay as they are)."""

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", one, text)


def environment(sources: Sources, pod: Obj, container: Obj, base: dict[str, str]) -> dict[str, str]:
    env = dict(base)
    for source in container.get("envFrom") or []:
        secret = "secretRef" in source
        ref = source.get("secretRef") or source.get("configMapRef") or {}
        kind = "secrets" if secret else "configmaps"
        data = sources.data(kind, ref["name"], bool(ref.get("optional"))) or {}
        prefix = source.get("prefix", "")
        env.update({prefix + k: v.decode() for k, v in data.items()})
    for item in container.get("env") or []:
        name, source = item["name"], item.get("valueFrom")
        if source is None:
            env[name] = expand(str(item.get("value", "")), env)
        elif "fieldRef" in source:
            env[name] = field_ref(pod, source["fieldRef"]["fieldPath"])
        elif "configMapKeyRef" in source or "secretKeyRef" in source:
            secret = "secretKeyRef" in source
            ref = source["secretKeyRef" if secret else "configMapKeyRef"]
            kind = "secrets" if secret else "configmaps"
            data = sources.data(kind, ref["name"], bool(ref.get("optional")))
            if data is not None and ref["key"] in data:
                env[name] = data[ref["key"]].decode()
            elif not ref.get("optional"):
                raise NotReady(f"couldn't find key {ref['key']} in {kind[:-1]} {ref['name']}")
        elif "resourceFieldRef" in source:
            env[name] = "0"
    return env


# -- Service links -----------------------------------------------------------------------------


def service_links(services: dict[tuple[str, str], Obj], namespace: str, pod: Obj) -> dict[str, str]:
    """The docker-link variables a kubelet gives: every Service with a ClusterIP in the
    pod's namespace (unless enableServiceLinks is false), and always ``kubernetes``."""
    links = pod["spec"].get("enableServiceLinks") is not False
    env: dict[str, str] = {}
    for (ns, name), svc in sorted(services.items()):
        wanted = (ns == namespace and links) or (ns, name) == ("default", "kubernetes")
        ip = svc.get("spec", {}).get("clusterIP")
        if not wanted or not ip or ip == "None":
            continue
        prefix = re.sub(r"[^A-Z0-9]", "_", name.upper())
        ports = svc["spec"].get("ports") or []
        for i, port in enumerate(ports):
            number, proto = str(port["port"]), port.get("protocol", "TCP").lower()
            if i == 0:
                env[f"{prefix}_SERVICE_HOST"] = ip
                env[f"{prefix}_SERVICE_PORT"] = number
                env[f"{prefix}_PORT"] = f"{proto}://{ip}:{number}"
            if port.get("name"):
                env[f"{prefix}_SERVICE_PORT_{re.sub(r'[^A-Z0-9]', '_', port['name'].upper())}"] = (
                    number
                )
            link = f"{prefix}_PORT_{number}_{proto.upper()}"
            env[link] = f"{proto}://{ip}:{number}"
            env[f"{link}_PROTO"], env[f"{link}_PORT"], env[f"{link}_ADDR"] = proto, number, ip
    return env


# -- volumes ------------------------------------------------------------------------------------

Files = dict[str, tuple[bytes, int]]  # relative path -> (content, mode)
TokenSource = Callable[[Obj], bytes]  # a projected serviceAccountToken source -> the token


def _items(data: dict[str, bytes], spec: Obj, default_mode: int, what: str) -> Files:
    files: Files = {}
    for item in spec.get("items") or [{"key": k, "path": k} for k in sorted(data)]:
        if item["key"] not in data:
            if spec.get("optional"):
                continue
            raise NotReady(f'configmap or secret key "{item["key"]}" not found for {what}')
        files[item["path"]] = (data[item["key"]], item.get("mode", default_mode))
    return files


def volume_files(sources: Sources, pod: Obj, volume: Obj, token: TokenSource) -> Files | None:
    """The files of an API-backed volume (None for emptyDir, hostPath and the like)."""
    what = f'volume "{volume["name"]}"'
    if "configMap" in volume:
        spec = volume["configMap"]
        data = sources.data("configmaps", spec["name"], bool(spec.get("optional"))) or {}
        return _items(data, spec, spec.get("defaultMode", 0o644), what)
    if "secret" in volume:
        spec = volume["secret"]
        data = sources.data("secrets", spec["secretName"], bool(spec.get("optional"))) or {}
        return _items(data, spec, spec.get("defaultMode", 0o644), what)
    if "downwardAPI" in volume:
        spec = volume["downwardAPI"]
        return _downward(pod, spec.get("items") or [], spec.get("defaultMode", 0o644))
    if "projected" in volume:
        spec = volume["projected"]
        mode = spec.get("defaultMode", 0o644)
        files: Files = {}
        for source in spec.get("sources") or []:
            if "serviceAccountToken" in source:
                sat = source["serviceAccountToken"]
                files[sat["path"]] = (token(sat), mode if "defaultMode" in spec else 0o600)
            elif "configMap" in source:
                ref = source["configMap"]
                data = sources.data("configmaps", ref["name"], bool(ref.get("optional"))) or {}
                files.update(_items(data, ref, mode, what))
            elif "secret" in source:
                ref = source["secret"]
                data = sources.data("secrets", ref["name"], bool(ref.get("optional"))) or {}
                files.update(_items(data, ref, mode, what))
            elif "downwardAPI" in source:
                files.update(_downward(pod, source["downwardAPI"].get("items") or [], mode))
        return files
    return None


def _downward(pod: Obj, items: list[Obj], mode: int) -> Files:
    return {
        item["path"]: (
            field_ref(pod, item["fieldRef"]["fieldPath"]).encode(),
            item.get("mode", mode),
        )
        for item in items
        if "fieldRef" in item
    }


def write_atomic(folder: Path, files: Files, owner: tuple[int, int] | None = None) -> bool:
    """Lay ``files`` out under ``folder`` as the kubelet's atomic writer does; False when they
    are already there as given (nothing written)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "..data"
    if data.is_symlink() and _same(folder / os.readlink(data), files):
        return False
    stamp = time.strftime("%Y_%m_%d_%H_%M_%S", time.gmtime())
    fresh = folder / f"..{stamp}.{secrets.randbelow(10**9):09d}"
    fresh.mkdir(mode=0o755)
    for relative, (content, mode) in files.items():
        path = fresh / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(mode)
        if owner is not None:
            os.chown(path, *owner)
    fresh.chmod(0o755)
    old = os.readlink(data) if data.is_symlink() else None
    swap = folder / "..data_tmp"
    swap.unlink(missing_ok=True)
    swap.symlink_to(fresh.name)
    os.rename(swap, data)  # the one atomic step
    tops = {Path(relative).parts[0] for relative in files}
    for top in tops:
        link = folder / top
        if not link.is_symlink():
            link.symlink_to(Path("..data") / top)
    for entry in folder.iterdir():
        if not entry.name.startswith("..") and entry.name not in tops and entry.is_symlink():
            entry.unlink()
    if old is not None:
        shutil.rmtree(folder / old, ignore_errors=True)
    return True


def _same(current: Path, files: Files) -> bool:
    with contextlib.suppress(OSError):
        present = {str(p.relative_to(current)) for p in current.rglob("*") if p.is_file()}
        if present != set(files):
            return False
        return all(
            (current / rel).read_bytes() == content
            and ((current / rel).stat().st_mode & 0o777) == mode
            for rel, (content, mode) in files.items()
        )
    return False


def mount_script(
    container: Obj, volumes: dict[str, Path], stage: Path, image: tuple[Path, ...] = ()
) -> tuple[str, list[Path]]:
    """Shell lines that bind the volumes at their mountPaths (inside the pod's private mount
    namespace), and the mount points this creates on the host that must be removed after.

    Sources are first bound under ``stage`` (a folder of this pod's), then to their targets,
    parents before children as runc orders them: a volume mounted at /tmp would otherwise hide
    the cluster's own folder (under /tmp) that later sources live in. ``image`` are the host
    paths that stand in for the image (the virtualenv, the checkout): one that a volume would
    hide (a checkout under /tmp, an emptyDir at /tmp) is bound back over it, as an image's
    /usr/local is not under the pod's /tmp."""
    lines, created = [], []
    targets = [Path(m["mountPath"]) for m in container.get("volumeMounts") or []]
    hidden = [p for p in image if any(t == p or t in p.parents for t in targets)]
    mounts = []
    for mount in container.get("volumeMounts") or []:
        source = volumes.get(mount["name"])
        if source is None:
            raise NotReady(f'volume "{mount["name"]}" is not defined')
        if mount.get("subPath"):
            source = source / mount["subPath"]
        mounts.append((mount, source))
    if mounts:
        created.append(stage)
        staged = []
        for i, (mount, source) in enumerate(mounts):
            if source.is_file():  # a single file (subPath): bound straight from its source
                staged.append((mount, source, True))
                continue
            # Mount points of the volumes mounted beneath this one are made in its source, as
            # the kubelet's MakeNestedMountpoints does for ConfigMap, Secret and projected
            # volumes (and runc in writable ones): a read-only volume cannot get them later.
            for inner in _beneath(Path(mount["mountPath"]), targets):
                lines.append(f"mkdir -p {_q(source / inner)}")
            held = stage / str(i)
            lines += [f"mkdir -p {_q(held)}", f"mount --bind {_q(source)} {_q(held)}"]
            staged.append((mount, held, False))
    else:
        staged = []
    for i, path in enumerate(hidden):
        lines += [
            f"mkdir -p {_q(stage / f'image-{i}')}",
            f"mount --bind {_q(path)} {_q(stage / f'image-{i}')}",
        ]
    staged.sort(key=lambda item: len(Path(item[0]["mountPath"]).parts))
    for mount, source, is_file in staged:
        target = Path(mount["mountPath"])
        missing = target
        while not missing.parent.exists() and missing.parent != missing:
            missing = missing.parent
        if not target.exists():
            created.append(missing)
        make = f"touch {_q(target)}" if is_file else f"mkdir -p {_q(target)}"
        if is_file:
            lines.append(f"mkdir -p {_q(target.parent)}")
        lines.append(f"[ -e {_q(target)} ] || {make}")
        lines.append(f"mount --bind {_q(source)} {_q(target)}")
        if mount.get("readOnly"):
            lines.append(f"mount -o remount,bind,ro {_q(target)}")
    for i, path in enumerate(hidden):
        lines += [f"mkdir -p {_q(path)}", f"mount --bind {_q(stage / f'image-{i}')} {_q(path)}"]
    return "\n".join(lines), created


def _beneath(target: Path, targets: list[Path]) -> list[Path]:
    """The other mount targets under ``target``, relative to it."""
    return [other.relative_to(target) for other in targets if target in other.parents]


def _q(path: Path) -> str:
    return "'" + str(path).replace("'", "'\"'\"'") + "'"
