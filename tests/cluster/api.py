"""The REST surface: Kubernetes URLs mapped onto the store, as real clients call them.

Served: ``/api/v1/...`` and ``/apis/GROUP/VERSION/...`` for cluster-scoped and namespaced kinds,
all namespaces or one; verbs get, list, watch, create, update (PUT), patch (JSON, merge,
strategic merge, apply), delete and deletecollection; subresources ``status`` and ``log``; query
parameters labelSelector, fieldSelector, limit, continue, resourceVersion, timeoutSeconds, dryRun,
propagationPolicy, gracePeriodSeconds (fieldManager, fieldValidation and force are accepted and
ignored). Bodies are JSON or YAML; protobuf is refused with 415, as kubectl's imperative
``create namespace`` and ``create configmap`` send it (use ``--dry-run=client -o yaml | kubectl
apply -f -``). Bearer tokens are read, and each request's identity recorded, by
``serviceaccount``; there is no authorization: everything is allowed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web

from tests.cluster import discovery, openapi, patch
from tests.cluster.resources import Resource
from tests.cluster.selectors import SelectorError, field_matcher, label_matcher
from tests.cluster.store import ApiError, Obj, Store
from tests.cluster.table import table
from tests.cluster.watch import stream_logs, stream_watch

STORE = web.AppKey("store", Store)


@dataclass
class Target:
    res: Resource
    namespace: str | None
    name: str | None
    sub: str | None


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


def resolve(store: Store, parts: list[str]) -> Target | None:
    """Split ``api/v1/...`` or ``apis/g/v/...`` into the resource, namespace, name, subresource."""
    if parts[0] == "api" and len(parts) >= 3:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[0] == "apis" and len(parts) >= 4:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = None
    namespace_sub = not group and len(rest) == 3 and rest[2] in ("status", "finalize")
    if rest[0] == "namespaces" and len(rest) >= 3 and not namespace_sub:
        namespace, rest = rest[1], rest[2:]
    if len(rest) > 3:
        return None
    res = store.registry.find(group, version, rest[0])
    if res is None or (namespace is not None and not res.namespaced):
        return None
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if sub is not None and sub not in res.subresources:
        return None
    return Target(res, namespace, name, sub)


async def read_body(request: web.Request) -> Any:
    content_type = request.content_type
    if "protobuf" in content_type:
        raise ApiError(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - "
            "accepted media types include: application/json, application/yaml",
        )
    text = await request.text()
    if not text.strip():
        return {}
    try:
        return yaml.safe_load(text) if "yaml" in content_type else json.loads(text)
    except (ValueError, yaml.YAMLError) as error:
        raise ApiError(400, "BadRequest", f"cannot decode the body: {error}") from None


def _dry_run(request: web.Request, body: Obj | None = None) -> bool:
    wanted = request.query.getall("dryRun", []) + ((body or {}).get("dryRun") or [])
    return "All" in wanted


def _matcher(request: web.Request) -> Any:
    try:
        labels = label_matcher(request.query.get("labelSelector"))
        fields = field_matcher(request.query.get("fieldSelector"))
    except SelectorError as error:
        raise ApiError(400, "BadRequest", str(error)) from None
    return lambda obj: labels(obj) and fields(obj)


def _wants_table(request: web.Request) -> bool:
    return "as=Table" in request.headers.get("Accept", "")


async def handle(request: web.Request) -> web.StreamResponse:
    store = request.app[STORE]
    parts = [p for p in request.path.split("/") if p]
    try:
        if answer := static(store, parts):
            return _json(answer)
        if parts and parts[0] == "openapi":
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        target = resolve(store, parts)
        if target is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return await dispatch(request, store, target)
    except ApiError as error:
        return _json(error.status(), error.code)


def static(store: Store, parts: list[str]) -> Any:
    """Discovery, version and OpenAPI documents; None when the path is not one of them."""
    if parts == ["version"]:
        return discovery.VERSION
    if parts == ["api"]:
        return discovery.core_versions()
    if parts == ["apis"]:
        return discovery.groups(store.registry)
    if parts == ["healthz"] or parts == ["readyz"] or parts == ["livez"]:
        return "ok"
    if len(parts) == 2 and parts[0] == "api":
        return discovery.resource_list(store.registry, "", parts[1])
    if len(parts) == 3 and parts[0] == "apis":
        return discovery.resource_list(store.registry, parts[1], parts[2])
    if len(parts) == 2 and parts[0] == "apis":
        versions = store.registry.group_versions().get(parts[1])
        return (
            {"kind": "APIGroup", "apiVersion": "v1", **discovery.group(parts[1], versions)}
            if versions
            else None
        )
    if parts[:2] == ["openapi", "v3"]:
        if len(parts) == 2:
            return openapi.index(store.registry)
        if parts[2] == "api" and len(parts) == 4:
            return openapi.document(store.registry, "", parts[3])
        if parts[2] == "apis" and len(parts) == 5:
            return openapi.document(store.registry, parts[3], parts[4])
    return None


async def dispatch(request: web.Request, store: Store, t: Target) -> web.StreamResponse:
    res, ns, name, method = t.res, t.namespace or "", t.name, request.method
    if t.sub == "log":
        logs = request.app.get(LOGS)
        if logs is None or method != "GET" or name is None:
            raise ApiError(400, "BadRequest", "no kubelet serves logs in this cluster")
        store.get(res, ns, name)
        return await stream_logs(request, logs, ns, name)
    if method == "GET" and name is None:
        if request.query.get("watch") in ("true", "1"):
            return await stream_watch(request, store, res, t.namespace, _matcher(request))
        items, rv, more = store.list(
            res,
            t.namespace,
            _matcher(request),
            int(request.query.get("limit", "0") or 0),
            request.query.get("continue"),
        )
        if _wants_table(request):
            return _json(table(res, items, rv, request.query.get("includeObject", "")))
        meta: Obj = {"resourceVersion": rv, **({"continue": more} if more else {})}
        listing = {"kind": f"{res.kind}List", "apiVersion": res.group_version, "metadata": meta}
        return _json({**listing, "items": items})
    if method == "GET" and name is not None:
        obj = store.get(res, ns, name)
        if _wants_table(request):
            return _json(table(res, [obj], obj["metadata"]["resourceVersion"]))
        return _json(obj)
    if method == "POST" and name is None:
        body = await read_body(request)
        body_ns = (body.get("metadata") or {}).get("namespace")
        if res.namespaced and body_ns and body_ns != ns:
            message = "the namespace of the provided object does not match the request's namespace"
            raise ApiError(400, "BadRequest", message)
        return _json(store.create(res, ns, body, _dry_run(request)), 201)
    if method == "PUT" and name is not None:
        body = await read_body(request)
        return _json(store.update(res, ns, name, body, t.sub, _dry_run(request)))
    if method == "PATCH" and name is not None:
        return _json(await patch_object(request, store, t))
    if method == "DELETE":
        body = await read_body(request)
        q = request.query
        propagation = body.get("propagationPolicy") or q.get("propagationPolicy")
        grace = body.get("gracePeriodSeconds", q.get("gracePeriodSeconds"))
        grace = None if grace is None else int(grace)
        dry = _dry_run(request, body)
        if name is not None:
            pre = body.get("preconditions")
            return _json(store.delete(res, ns, name, propagation, grace, dry, pre))
        items, rv, _ = store.list(res, t.namespace, _matcher(request))
        for item in items:
            meta = item["metadata"]
            store.delete(res, meta.get("namespace", ""), meta["name"], propagation, grace, dry)
        listing = {"kind": f"{res.kind}List", "apiVersion": res.group_version}
        return _json({**listing, "metadata": {"resourceVersion": rv}, "items": items})
    raise ApiError(405, "MethodNotAllowed", f"{method} is not supported here")


async def patch_object(request: web.Request, store: Store, t: Target) -> Obj:
    assert t.name is not None
    res, ns, name = t.res, t.namespace or "", t.name
    body = await read_body(request)
    kind = request.content_type
    dry = _dry_run(request)
    if kind == "application/apply-patch+yaml":
        try:
            current = store.get(res, ns, name)
        except ApiError as error:
            if error.code != 404 or t.sub:
                raise
            body.setdefault("metadata", {})["name"] = name
            return store.create(res, ns, body, dry)
        merged = (
            patch.merge_patch(current, body) if res.custom else patch.strategic_merge(current, body)
        )
    else:
        current = store.get(res, ns, name)
        if kind == "application/json-patch+json":
            if not isinstance(body, list):
                raise ApiError(400, "BadRequest", "a JSON patch must be a list of operations")
            merged = patch.json_patch(current, body)
        elif kind == "application/merge-patch+json":
            merged = patch.merge_patch(current, body)
        elif kind == "application/strategic-merge-patch+json":
            if res.custom:
                message = "strategic merge patch is not supported for custom resources"
                raise ApiError(415, "UnsupportedMediaType", message)
            merged = patch.strategic_merge(current, body)
        else:
            raise ApiError(415, "UnsupportedMediaType", f"unsupported patch type {kind!r}")
    if not isinstance(merged, dict):
        raise ApiError(422, "Invalid", "the patch does not leave an object")
    wanted_rv = (
        (body.get("metadata") or {}).get("resourceVersion") if isinstance(body, dict) else None
    )
    merged.setdefault("metadata", {})["resourceVersion"] = (
        wanted_rv or current["metadata"]["resourceVersion"]
    )
    return store.update(res, ns, name, merged, t.sub, dry)


LOGS: web.AppKey[Any] = web.AppKey("logs")


def build_app(store: Store, middlewares: tuple[Any, ...] = ()) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=middlewares)
    app[STORE] = store
    app.router.add_route("*", "/{tail:.*}", handle)
    return app
