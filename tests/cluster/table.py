"""Server-side printing: ``Accept: application/json;as=Table`` answers as ``kubectl get`` wants.

Custom resources get Name, their CRD's ``additionalPrinterColumns`` (JSONPath limited to dotted
fields, ``[n]`` and ``[?(@.field=="value")]`` filters) and Age when the CRD lists no columns;
Pods get Name, Ready, Status, Restarts, Age (and IP, Node with ``-o wide``); Services Name, Type,
Cluster-IP, Ports, Age; every other kind Name and Age.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from tests.cluster.resources import Resource

Obj = dict[str, Any]


def age(stamp: str | None) -> str:
    if not stamp:
        return "<unknown>"
    then = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    s = max(0, int((datetime.now(UTC) - then).total_seconds()))
    m, h, d = s // 60, s // 3600, s // 86400
    if s < 120:
        return f"{s}s"
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if h < 3:
        return f"{m}m"
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    return f"{h}h" if h < 48 else f"{d}d"


_STEP = re.compile(
    r"\.([A-Za-z0-9_-]+)|\[(\d+)\]|\[\?\(@\.([A-Za-z0-9_.-]+)\s*==\s*[\"']?([^\"')]*)[\"']?\)\]"
)


def jsonpath(obj: Any, path: str) -> Any:
    """A small JSONPath: ``.a.b``, ``.list[0]``, ``.conditions[?(@.type=="Ready")].status``."""
    values = [obj]
    for m in _STEP.finditer(path.strip().lstrip("$").strip("{}")):
        field, index, key, wanted = m.groups()
        found: list[Any] = []
        for value in values:
            if field and isinstance(value, dict) and field in value:
                found.append(value[field])
            elif index and isinstance(value, list) and int(index) < len(value):
                found.append(value[int(index)])
            elif key and isinstance(value, list):
                found += [v for v in value if isinstance(v, dict) and str(v.get(key)) == wanted]
        values = found
    if not values:
        return None
    return values[0] if len(values) == 1 else ",".join(str(v) for v in values)


def _column(name: str, kind: str = "string", priority: int = 0, fmt: str = "") -> Obj:
    return {"name": name, "type": kind, "format": fmt, "description": name, "priority": priority}


def _cell(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "date":
        return age(str(value))
    if kind in ("integer", "number", "boolean"):
        return value
    return value if isinstance(value, str) else json.dumps(value)


def _pod_row(pod: Obj) -> list[Any]:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    containers = pod.get("spec", {}).get("containers") or []
    ready = sum(1 for s in statuses if s.get("ready"))
    status = pod.get("status", {}).get("phase", "Pending")
    for s in statuses:
        state = s.get("state", {})
        reason = (state.get("terminated") or state.get("waiting") or {}).get("reason")
        if reason:
            status = reason
    if pod["metadata"].get("deletionTimestamp"):
        status = "Terminating"
    restarts = sum(s.get("restartCount", 0) for s in statuses)
    ip = pod.get("status", {}).get("podIP") or "<none>"
    node = pod.get("spec", {}).get("nodeName") or "<none>"
    return [f"{ready}/{len(containers)}", status, restarts, age(_created(pod)), ip, node]


def _service_row(svc: Obj) -> list[Any]:
    spec = svc.get("spec", {})
    ports = ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports", []))
    return [spec.get("type", "ClusterIP"), spec.get("clusterIP", "None"), ports or "<none>"]


def _created(obj: Obj) -> str | None:
    created: str | None = obj["metadata"].get("creationTimestamp")
    return created


def columns_and_cells(res: Resource, obj: Obj) -> tuple[list[Obj], list[Any]]:
    name = obj["metadata"]["name"]
    name_column = _column("Name", fmt="name")
    if res.custom:
        defined = res.columns or [
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
        ]
        columns = [name_column] + [
            _column(c["name"], c.get("type", "string"), c.get("priority", 0), c.get("format", ""))
            for c in defined
        ]
        cells = [_cell(jsonpath(obj, c["jsonPath"]), c.get("type", "string")) for c in defined]
        return columns, [name, *cells]
    if res.key == "/pods":
        columns = [
            name_column,
            _column("Ready"),
            _column("Status"),
            _column("Restarts", "integer"),
            _column("Age"),
            _column("IP", priority=1),
            _column("Node", priority=1),
        ]
        return columns, [name, *_pod_row(obj)]
    if res.key == "/services":
        columns = [name_column, _column("Type"), _column("Cluster-IP"), _column("Port(s)")]
        return [*columns, _column("Age")], [name, *_service_row(obj), age(_created(obj))]
    return [name_column, _column("Age")], [name, age(_created(obj))]


def table(res: Resource, items: list[Obj], rv: str, include_object: str = "") -> Obj:
    columns = columns_and_cells(res, {"metadata": {"name": ""}})[0]
    rows = []
    for item in items:
        columns, cells = columns_and_cells(res, item)
        if include_object == "Object":
            embedded = item
        else:
            embedded = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": item["metadata"],
            }
        rows.append({"cells": cells, "object": embedded})
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv},
        "columnDefinitions": columns,
        "rows": rows,
    }
