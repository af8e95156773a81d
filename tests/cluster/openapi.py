"""OpenAPI v3, just enough: an index of group-versions and one document per group-version.

Each document has, for every resource, the item path with a PATCH operation that carries
``x-kubernetes-group-version-kind`` and the ``fieldValidation`` parameter: kubectl then validates
on the server (we accept and ignore the parameter) and never asks for the protobuf-only
``/openapi/v2``, which answers 404. Custom resources also get their CRD's ``openAPIV3Schema`` as a
component, so ``kubectl explain`` works for them; built-in kinds have no schemas here, so
``kubectl explain pod`` does not (and kubectl falls back to its compiled-in types for strategic
merge patches of built-in kinds).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tests.cluster.resources import Registry, Resource


def _prefix(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def _schema_name(res: Resource) -> str:
    reversed_group = ".".join(reversed(res.group.split("."))) if res.group else "io.k8s.api.core"
    return f"{reversed_group}.{res.version}.{res.kind}"


def document(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    resources = registry.in_group_version(group, version)
    if not resources:
        return None
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for res in resources:
        gvk = {"group": res.group, "version": res.version, "kind": res.kind}
        scope = "/namespaces/{namespace}" if res.namespaced else ""
        item = f"/{_prefix(group, version)}{scope}/{res.plural}/{{name}}"
        parameters = [
            {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
            for name in ("dryRun", "fieldManager", "fieldValidation", "force")
        ]
        reply = {"description": "OK", "content": {"application/json": {"schema": {}}}}
        operation = {
            "operationId": f"patch{res.kind}",
            "parameters": parameters,
            "responses": {"200": reply},
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": gvk,
        }
        paths[item] = {"patch": operation}
        if res.schema is not None:
            schema = dict(res.schema)
            schema["x-kubernetes-group-version-kind"] = [gvk]
            schemas[_schema_name(res)] = schema
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (gaggle local cluster)", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def index(registry: Registry) -> dict[str, Any]:
    paths = {}
    seen = {(g, v) for g, v, _ in registry.resources}
    for group, version in sorted(seen):
        body = json.dumps(document(registry, group, version), sort_keys=True).encode()
        digest = hashlib.sha256(body).hexdigest()[:32].upper()
        prefix = _prefix(group, version)
        paths[prefix] = {"serverRelativeURL": f"/openapi/v3/{prefix}?hash={digest}"}
    return {"paths": paths}
