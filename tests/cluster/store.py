"""The object store of the local cluster: one global resourceVersion, watch history, deletion.

Emulated: create (generateName, uid, creationTimestamp, generation), get, list (label and field
selectors, limit/continue), update with optimistic concurrency (409 on a stale resourceVersion),
``/status`` isolated both ways for kinds with a status subresource, generation bumped on changes
outside metadata and status, no-op updates that keep the resourceVersion, finalizers with
deletionTimestamp, graceful deletion (a hook says which objects still have to wind down: pods
whose processes run), dryRun, and watch from a resourceVersion with 410 Gone once the history has
been compacted. Not emulated: admission, defaulting beyond a few kinds' hooks, schema validation
(fieldValidation is accepted and ignored), managedFields, storage versions and conversion.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import random
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.cluster.resources import Registry, Resource
from tests.cluster.selectors import Matcher

Obj = dict[str, Any]
Key = tuple[str, str, str]  # (resource key, namespace, name)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiError(Exception):
    """An error the API answers with a Status object."""

    def __init__(self, code: int, reason: str, message: str, details: Obj | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self) -> Obj:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }


def not_found(res: Resource, name: str) -> ApiError:
    what = f"{res.plural}.{res.group}" if res.group else res.plural
    details = {"name": name, "group": res.group, "kind": res.plural}
    return ApiError(404, "NotFound", f'{what} "{name}" not found', details)


@dataclass
class Change:
    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    res: Resource
    obj: Obj
    old: Obj | None


@dataclass(eq=False)
class Watcher:
    res: Resource
    namespace: str | None
    match: Matcher
    queue: asyncio.Queue[tuple[str, Obj]] = field(default_factory=asyncio.Queue)

    def offer(self, change: Change) -> None:
        if change.res.key != self.res.key:
            return
        if self.namespace and change.obj["metadata"].get("namespace") != self.namespace:
            return
        now_in = change.type != "DELETED" and self.match(change.obj)
        was_in = change.old is not None and self.match(change.old)
        if change.type == "DELETED":
            kind = "DELETED" if was_in or self.match(change.obj) else ""
        elif now_in:
            kind = "MODIFIED" if was_in else "ADDED"
        else:
            kind = "DELETED" if was_in else ""  # left the selection
        if kind:
            self.queue.put_nowait((kind, change.obj))


def _spec_of(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def _same(a: Obj, b: Obj) -> bool:
    strip = ("resourceVersion", "managedFields")

    def clean(o: Obj) -> Obj:
        meta = {k: v for k, v in o.get("metadata", {}).items() if k not in strip}
        return {**o, "metadata": meta}

    return clean(a) == clean(b)


class Store:
    def __init__(self, registry: Registry, history: int = 20000) -> None:
        self.registry = registry
        self.objects: dict[Key, Obj] = {}
        self.uids: dict[str, Key] = {}
        self.rv = 1
        self.oldest = 0  # a watch from below this resourceVersion gets 410 Gone
        self.history: deque[Change] = deque(maxlen=history)
        self.watchers: set[Watcher] = set()
        self.hooks: list[Callable[[Change], None]] = []
        self.defaulters: dict[str, Callable[[Obj], None]] = {}
        # each says whether a deleted object must linger (deletionTimestamp set) before removal
        self.lingering: list[Callable[[Resource, Obj], bool]] = []

    # -- reading -----------------------------------------------------------------------------

    def get(self, res: Resource, namespace: str, name: str) -> Obj:
        obj = self.objects.get((res.key, namespace if res.namespaced else "", name))
        if obj is None:
            raise not_found(res, name)
        return self._out(res, obj)

    def list(
        self,
        res: Resource,
        namespace: str | None,
        match: Matcher = lambda obj: True,
        limit: int = 0,
        token: str | None = None,
    ) -> tuple[list[Obj], str, str | None]:
        """(items, resourceVersion, continue token or None)."""
        start = json.loads(base64.b64decode(token)) if token else None
        found = []
        for (key, ns, name), obj in sorted(self.objects.items()):
            if key != res.key or (namespace and ns != namespace):
                continue
            if start and [ns, name] <= start:
                continue
            if match(obj):
                found.append(self._out(res, obj))
        more = None
        if limit and len(found) > limit:
            found = found[:limit]
            last = found[-1]["metadata"]
            more = base64.b64encode(
                json.dumps([last.get("namespace", ""), last["name"]]).encode()
            ).decode()
        return found, str(self.rv), more

    def _out(self, res: Resource, obj: Obj) -> Obj:
        out = copy.deepcopy(obj)
        out["apiVersion"] = res.group_version
        return out

    def exists_uid(self, uid: str) -> bool:
        return uid in self.uids

    def by_uid(self, uid: str) -> tuple[Resource, Obj] | None:
        key = self.uids.get(uid)
        if key is None:
            return None
        res = self.registry.by_key(key[0])
        return (res, self.objects[key]) if res else None

    # -- writing -----------------------------------------------------------------------------

    def _check_namespace(self, res: Resource, namespace: str) -> None:
        if not res.namespaced:
            return
        ns = self.objects.get(("/namespaces", "", namespace))
        if ns is None:
            raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found')
        if ns["metadata"].get("deletionTimestamp"):
            message = (
                f"{res.plural} is forbidden: unable to create new content in namespace "
                f"{namespace} because it is being terminated"
            )
            raise ApiError(403, "Forbidden", message)

    def create(self, res: Resource, namespace: str, body: Obj, dry_run: bool = False) -> Obj:
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        self._check_namespace(res, namespace)
        if res.namespaced:
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        name = meta.get("name")
        if not name and meta.get("generateName"):
            name = meta["generateName"] + "".join(
                random.choices("bcdfghjklmnpqrstvwxz2456789", k=5)
            )
        if not name:
            raise ApiError(422, "Invalid", f"{res.kind}: metadata.name: Required value")
        key = (res.key, namespace if res.namespaced else "", name)
        if key in self.objects:
            what = f"{res.plural}.{res.group}" if res.group else res.plural
            raise ApiError(
                409,
                "AlreadyExists",
                f'{what} "{name}" already exists',
                {"name": name, "group": res.group, "kind": res.plural},
            )
        for transient in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion"):
            meta.pop(transient, None)
        meta.update(name=name, uid=str(uuid.uuid4()), creationTimestamp=now(), generation=1)
        obj["apiVersion"], obj["kind"] = res.group_version, res.kind
        if res.has_status:
            obj.pop("status", None)
        if defaulter := self.defaulters.get(res.key):
            defaulter(obj)
        if dry_run:
            return obj
        self._commit("ADDED", res, key, obj, None)
        return self._out(res, obj)

    def update(
        self,
        res: Resource,
        namespace: str,
        name: str,
        body: Obj,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        key = (res.key, namespace if res.namespaced else "", name)
        old = self.objects.get(key)
        if old is None:
            raise not_found(res, name)
        new = copy.deepcopy(body)
        meta = new.setdefault("metadata", {})
        if (
            meta.get("resourceVersion")
            and meta["resourceVersion"] != old["metadata"]["resourceVersion"]
        ):
            raise self._conflict(res, name)
        if meta.get("name", name) != name:
            raise ApiError(400, "BadRequest", "the name of the object does not match the URL")
        if subresource == "status":
            status = new.get("status")
            new = copy.deepcopy(old)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
        else:
            if res.has_status:
                new.pop("status", None)
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
            fixed = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds")
            for item in (*fixed, "namespace", "generation"):
                meta.pop(item, None)
                if item in old["metadata"]:
                    meta[item] = old["metadata"][item]
            meta["name"] = name
            if _spec_of(new) != _spec_of(old):
                meta["generation"] = old["metadata"].get("generation", 1) + 1
        new["apiVersion"], new["kind"] = old["apiVersion"], old["kind"]
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if dry_run:
            return self._out(res, new)
        done = new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers")
        if done and not self.graceful(res, new):
            self._commit("DELETED", res, key, new, old)
            return self._out(res, new)
        if _same(new, old):
            return self._out(res, old)
        self._commit("MODIFIED", res, key, new, old)
        return self._out(res, new)

    def graceful(self, res: Resource, obj: Obj) -> bool:
        return any(check(res, obj) for check in self.lingering)

    def _conflict(self, res: Resource, name: str) -> ApiError:
        what = f"{res.plural}.{res.group}" if res.group else res.plural
        message = (
            f'Operation cannot be fulfilled on {what} "{name}": the object has been modified; '
            "please apply your changes to the latest version and try again"
        )
        return ApiError(409, "Conflict", message, {"name": name, "kind": res.plural})

    def delete(
        self,
        res: Resource,
        namespace: str,
        name: str,
        propagation: str | None = None,
        grace: int | None = None,
        dry_run: bool = False,
        preconditions: Obj | None = None,
    ) -> Obj:
        key = (res.key, namespace if res.namespaced else "", name)
        old = self.objects.get(key)
        if old is None:
            raise not_found(res, name)
        pre = preconditions or {}
        if pre.get("uid") and pre["uid"] != old["metadata"]["uid"]:
            raise self._conflict(res, name)
        if (
            pre.get("resourceVersion")
            and pre["resourceVersion"] != old["metadata"]["resourceVersion"]
        ):
            raise self._conflict(res, name)
        if dry_run:
            return self._out(res, old)
        obj = copy.deepcopy(old)
        meta = obj["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        if propagation == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        if propagation == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        if finalizers:
            meta["finalizers"] = finalizers
        graceful = grace != 0 and self.graceful(res, obj)
        if not finalizers and not graceful:
            self._commit("DELETED", res, key, obj, old)
            return self._out(res, obj)
        meta.setdefault("deletionTimestamp", now())
        if graceful and res.key == "/pods":
            default = obj.get("spec", {}).get("terminationGracePeriodSeconds", 30)
            wanted = default if grace is None else grace
            meta["deletionGracePeriodSeconds"] = min(
                wanted, meta.get("deletionGracePeriodSeconds", wanted)
            )
        else:
            meta.setdefault("deletionGracePeriodSeconds", 0)
        if not _same(obj, old):
            self._commit("MODIFIED", res, key, obj, old)
        return self._out(res, obj)

    def _commit(self, kind: str, res: Resource, key: Key, obj: Obj, old: Obj | None) -> None:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        if kind == "DELETED":
            self.objects.pop(key, None)
            self.uids.pop(obj["metadata"]["uid"], None)
        else:
            self.objects[key] = obj
            self.uids[obj["metadata"]["uid"]] = key
        change = Change(self.rv, kind, res, self._out(res, obj), old and self._out(res, old))
        if len(self.history) == self.history.maxlen:
            self.oldest = self.history[0].rv
        self.history.append(change)
        for watcher in list(self.watchers):
            watcher.offer(change)
        for hook in self.hooks:
            hook(change)

    def compact(self) -> None:
        """Forget the watch history: a watch from any older resourceVersion now gets 410."""
        self.history.clear()
        self.oldest = self.rv

    # -- watching ----------------------------------------------------------------------------

    def watch(
        self, res: Resource, namespace: str | None, match: Matcher, since: str | None
    ) -> Watcher:
        watcher = Watcher(res, namespace, match)
        if not since or since == "0":
            for item in self.list(res, namespace, match)[0]:
                watcher.queue.put_nowait(("ADDED", item))
        else:
            start = int(since)
            if start < self.oldest:
                raise ApiError(410, "Expired", f"too old resource version: {start} ({self.oldest})")
            for change in self.history:
                if change.rv > start:
                    watcher.offer(change)
        self.watchers.add(watcher)
        return watcher
