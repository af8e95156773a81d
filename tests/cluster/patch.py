"""The three PATCH flavours: JSON patch (RFC 6902), merge patch (RFC 7386), strategic merge patch.

Strategic merge patch is emulated from a table of list fields and their merge keys (containers,
volumes, env, ports... by name, port or mountPath) instead of the Go struct tags; lists not in the
table are replaced, as for merge patch. Directives understood: ``$patch: delete|replace|merge``,
``$deleteFromPrimitiveList/<field>``; ``$setElementOrder/<field>`` and ``$retainKeys`` are dropped
(order and retained keys are not enforced). Server-side apply is served as a strategic merge of
the applied configuration (no managedFields, no conflicts, fields left out are not removed).
"""

from __future__ import annotations

import copy
from typing import Any

from tests.cluster.store import ApiError

# list field -> the key(s) its elements merge on (the first one an element has)
MERGE_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "volumes": ("name",),
    "volumeMounts": ("mountPath",),
    "env": ("name",),
    "ports": ("containerPort", "port"),
    "imagePullSecrets": ("name",),
    "conditions": ("type",),
    "ownerReferences": ("uid",),
    "hostAliases": ("ip",),
    "tolerations": ("key",),
}
# primitive lists merged as sets
UNION_LISTS = {"finalizers"}


def _bad(message: str) -> ApiError:
    return ApiError(422, "Invalid", message)


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise _bad(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str]) -> Any:
    for part in parts:
        try:
            doc = doc[int(part)] if isinstance(doc, list) else doc[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise _bad(f"path not found: /{'/'.join(parts)}") from None
    return doc


def json_patch(doc: Any, operations: list[dict[str, Any]]) -> Any:
    doc = copy.deepcopy(doc)
    for op in operations:
        kind, parts = op.get("op"), _pointer(op.get("path", ""))
        if kind == "test":
            if _walk(doc, parts) != op.get("value"):
                raise _bad(f"test failed at {op['path']}")
            continue
        if kind in ("move", "copy"):
            from_parts = _pointer(op["from"])
            value = copy.deepcopy(_walk(doc, from_parts))
            if kind == "move":
                doc = _remove(doc, from_parts)
            doc = _add(doc, parts, value)
        elif kind == "add":
            doc = _add(doc, parts, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            doc = _remove(doc, parts)
        elif kind == "replace":
            _walk(doc, parts)  # must exist
            doc = _add(_remove(doc, parts), parts, copy.deepcopy(op.get("value")))
        else:
            raise _bad(f"unknown JSON patch operation {kind!r}")
    return doc


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent, last = _walk(doc, parts[:-1]), parts[-1]
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if not 0 <= index <= len(parent):
            raise _bad(f"index out of range at /{'/'.join(parts)}")
        parent.insert(index, value)
    elif isinstance(parent, dict):
        parent[last] = value
    else:
        raise _bad(f"cannot add at /{'/'.join(parts)}")
    return doc


def _remove(doc: Any, parts: list[str]) -> Any:
    if not parts:
        return None
    parent, last = _walk(doc, parts[:-1]), parts[-1]
    _walk(parent, [last])
    if isinstance(parent, list):
        del parent[int(last)]
    else:
        del parent[last]
    return doc


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith(("$setElementOrder/", "$retainKeys", "$patch")):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field) or [] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _merge_list(key, result.get(key), value)
        else:
            merged = strategic_merge(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
    return result


def _merge_list(field: str, current: Any, patch: list[Any]) -> list[Any]:
    current = copy.deepcopy(current) if isinstance(current, list) else []
    if field in UNION_LISTS:
        return current + [v for v in patch if v not in current]
    keys = MERGE_KEYS.get(field)
    if not keys or not all(isinstance(item, dict) for item in patch):
        return copy.deepcopy(patch)
    if any(item.get("$patch") == "replace" for item in patch):
        return [copy.deepcopy(i) for i in patch if i.get("$patch") != "replace"]

    def key_of(item: dict[str, Any]) -> tuple[str, Any] | None:
        return next(((k, item[k]) for k in keys if k in item), None)

    for item in patch:
        key = key_of(item)
        index = next(
            (i for i, c in enumerate(current) if key and isinstance(c, dict) and key_of(c) == key),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                del current[index]
        elif index is None:
            current.append(strategic_merge({}, item))
        else:
            current[index] = strategic_merge(current[index], item)
    return current
