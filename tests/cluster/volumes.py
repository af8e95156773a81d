"""What a container sees besides its command: environment and volumes, resolved from the store.

Environment: ``env`` with ``value`` (``$(VAR)`` expanded), ``valueFrom.fieldRef``
(metadata.name, metadata.namespace, metadata.uid, metadata.labels['k'], metadata.annotations['k'],
spec.nodeName, spec.serviceAccountName, status.podIP, status.hostIP), ``configMapKeyRef`` and
``secretKeyRef``; ``envFrom`` with ``configMapRef``/``secretRef`` and ``prefix``. Not emulated:
``resourceFieldRef`` (gives "0"), Service environment variables (``FOO_SERVICE_HOST``).

Volumes are materialised as files in the pod's folder: ``configMap`` and ``secret`` (``items``,
``optional``, ``defaultMode``), ``emptyDir`` and ``hostPath`` (the host's path itself). They are
written once when the pod starts: later ConfigMap changes do not reach a running pod. Not
emulated: ``projected``, ``downwardAPI``, persistent volumes.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

from tests.cluster.store import ApiError, Obj, Store


class NotReady(Exception):
    """A referenced ConfigMap, Secret or key is missing (the pod waits, as a kubelet does)."""


def _lookup(store: Store, kind: str, namespace: str, name: str) -> Obj | None:
    res = store.registry.find("", "v1", kind)
    assert res is not None
    try:
        return store.get(res, namespace, name)
    except ApiError:
        return None


def _data(obj: Obj, secret: bool) -> dict[str, bytes]:
    found = {k: v.encode() for k, v in (obj.get("data") or {}).items()} if not secret else {}
    if secret:
        found = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    else:
        found.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return found


def _source(store: Store, namespace: str, ref: Obj, secret: bool) -> dict[str, bytes] | None:
    name = ref.get("secretName" if secret and "secretName" in ref else "name", "")
    obj = _lookup(store, "secrets" if secret else "configmaps", namespace, name)
    if obj is None:
        if ref.get("optional"):
            return None
        raise NotReady(f'{"secret" if secret else "configmap"} "{name}" not found')
    return _data(obj, secret)


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


def environment(store: Store, pod: Obj, container: Obj, base: dict[str, str]) -> dict[str, str]:
    namespace = pod["metadata"]["namespace"]
    env = dict(base)
    for source in container.get("envFrom") or []:
        secret = "secretRef" in source
        ref = source.get("secretRef") or source.get("configMapRef") or {}
        data = _source(store, namespace, ref, secret) or {}
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
            data = _source(store, namespace, ref, secret)
            if data is not None and ref["key"] in data:
                env[name] = data[ref["key"]].decode()
            elif not ref.get("optional"):
                raise NotReady(f'key "{ref["key"]}" not found in "{ref.get("name")}"')
        elif "resourceFieldRef" in source:
            env[name] = "0"
    return env


def materialise(store: Store, pod: Obj, folder: Path) -> dict[str, Path]:
    """Write the pod's volumes under ``folder``; {volume name: host path to bind}."""
    namespace = pod["metadata"]["namespace"]
    paths: dict[str, Path] = {}
    for volume in pod["spec"].get("volumes") or []:
        name = volume["name"]
        target = folder / name
        if "hostPath" in volume:
            paths[name] = Path(volume["hostPath"]["path"])
            continue
        target.mkdir(parents=True, exist_ok=True)
        paths[name] = target
        for kind in ("configMap", "secret"):
            if kind in volume:
                spec = volume[kind]
                data = _source(store, namespace, spec, kind == "secret") or {}
                items = spec.get("items") or [{"key": k, "path": k} for k in data]
                for item in items:
                    if item["key"] not in data:
                        raise NotReady(f'key "{item["key"]}" not found for volume "{name}"')
                    file = target / item["path"]
                    file.parent.mkdir(parents=True, exist_ok=True)
                    file.write_bytes(data[item["key"]])
                    file.chmod(item.get("mode", spec.get("defaultMode", 0o644)))
    return paths


def mount_script(
    pod: Obj, container: Obj, volumes: dict[str, Path], stage: Path | None = None
) -> tuple[str, list[Path]]:
    """Shell lines that bind the volumes at their mountPaths (inside the pod's private mount
    namespace), and the mount points this creates on the host that must be removed after.

    Sources are first bound under ``stage`` (a folder of this pod's), then to their targets,
    parents before children as runc orders them: a volume mounted at /tmp would otherwise hide
    the cluster's own folder (under /tmp) that later sources live in."""
    lines, created = [], []
    mounts = []
    for mount in container.get("volumeMounts") or []:
        source = volumes.get(mount["name"])
        if source is None:
            raise NotReady(f'volume "{mount["name"]}" is not defined')
        if mount.get("subPath"):
            source = source / mount["subPath"]
        mounts.append((mount, source))
    if stage is not None and mounts:
        created.append(stage)
        staged = []
        for i, (mount, source) in enumerate(mounts):
            if source.is_file():  # a single file (subPath): bound straight from its source
                staged.append((mount, source, True))
                continue
            held = stage / str(i)
            lines += [f"mkdir -p {_q(held)}", f"mount --bind {_q(source)} {_q(held)}"]
            staged.append((mount, held, False))
    else:
        staged = [(mount, source, source.is_file()) for mount, source in mounts]
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
    return "\n".join(lines), created


def _q(path: Path) -> str:
    return "'" + str(path).replace("'", "'\"'\"'") + "'"
