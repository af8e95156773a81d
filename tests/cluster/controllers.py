"""The control plane's own controllers: namespaces, CRDs and the garbage collector.

- Namespaces: created Active with the ``kubernetes`` finalizer; deleting one marks it Terminating,
  deletes everything in it and removes it once its contents are gone (their finalizers and
  pods' grace periods are waited for, as for real).
- CustomResourceDefinitions: registered as soon as they are created (reported NamesAccepted and
  Established at once); deleting one deletes its custom resources first (the
  ``customresourcecleanup`` finalizer), then stops serving the kind.
- Garbage collection by ownerReferences: background (dependents deleted once no owner is left),
  foreground (``foregroundDeletion``: the owner waits for its dependents) and orphan (``orphan``:
  dependents lose the ownerReference). ``blockOwnerDeletion`` is not distinguished.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from typing import Any

from tests.cluster.resources import Resource, from_crd
from tests.cluster.store import ApiError, Change, Obj, Store, now

CRD_KEY = "apiextensions.k8s.io/customresourcedefinitions"
CRD_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"


def _default_namespace(obj: Obj) -> None:
    obj.setdefault("spec", {})["finalizers"] = ["kubernetes"]
    obj["status"] = {"phase": "Active"}


def _crd_status(obj: Obj) -> Obj:
    stamp = now()
    names = copy.deepcopy(obj["spec"]["names"])
    names.setdefault("singular", names["kind"].lower())
    names.setdefault("listKind", names["kind"] + "List")
    conditions = [
        {"type": t, "status": "True", "reason": r, "message": m, "lastTransitionTime": stamp}
        for t, r, m in (
            ("NamesAccepted", "NoConflicts", "no conflicts found"),
            ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        )
    ]
    stored = [v["name"] for v in obj["spec"].get("versions", []) if v.get("storage")]
    return {"conditions": conditions, "acceptedNames": names, "storedVersions": stored}


def _default_crd(obj: Obj) -> None:
    spec = obj.get("spec", {})
    expected = f"{spec.get('names', {}).get('plural')}.{spec.get('group')}"
    if obj["metadata"]["name"] != expected:
        message = "metadata.name: Invalid value: must be spec.names.plural+'.'+spec.group"
        raise ApiError(422, "Invalid", f"CustomResourceDefinition {message} ({expected})")
    finalizers = obj["metadata"].setdefault("finalizers", [])
    if CRD_FINALIZER not in finalizers:
        finalizers.append(CRD_FINALIZER)
    obj["status"] = _crd_status(obj)


class Controllers:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.tasks: set[asyncio.Task[None]] = set()
        store.defaulters["/namespaces"] = _default_namespace
        store.defaulters[CRD_KEY] = _default_crd
        store.hooks.append(self.on_change)
        store.lingering.append(
            lambda res, obj: res.key == "/namespaces" and bool(obj["spec"].get("finalizers"))
        )
        for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
            res = store.registry.find("", "v1", "namespaces")
            assert res is not None
            store.create(res, "", {"metadata": {"name": name}})

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def on_change(self, change: Change) -> None:
        meta = change.obj["metadata"]
        deleting = change.type == "MODIFIED" and meta.get("deletionTimestamp")
        first_deleting = deleting and not (change.old or {}).get("metadata", {}).get(
            "deletionTimestamp"
        )
        key = change.res.key
        if key == CRD_KEY:
            if change.type == "DELETED":
                spec = change.obj["spec"]
                self.store.registry.remove_group_plural(spec["group"], spec["names"]["plural"])
            elif first_deleting:
                self._spawn(self._clean_crd(change.obj))
            elif not deleting:
                for resource in from_crd(change.obj):
                    self.store.registry.add(resource)
        if key == "/namespaces" and first_deleting:
            self._spawn(self._empty_namespace(meta["name"]))
        if change.type == "DELETED":
            asyncio.get_running_loop().call_soon(self._collect, meta["uid"], change.obj)
        elif deleting:
            finalizers = meta.get("finalizers") or []
            if "foregroundDeletion" in finalizers or "orphan" in finalizers:
                asyncio.get_running_loop().call_soon(self._owner_deleting, change.obj)

    # -- namespaces and CRDs -------------------------------------------------------------------

    async def _wait_until_gone(self, owns: Any, deadline: float = 300) -> None:
        loop = asyncio.get_running_loop()
        until = loop.time() + deadline
        # polls: objects go away through many paths, none of which signals this waiter
        while any(owns(key) for key in self.store.objects) and loop.time() < until:  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    async def _empty_namespace(self, name: str) -> None:
        ns_res = self.store.registry.find("", "v1", "namespaces")
        assert ns_res is not None
        ns = self.store.get(ns_res, "", name)
        ns["status"] = {"phase": "Terminating"}
        self.store.update(ns_res, "", name, ns, subresource="status")
        for key, ns_name, obj_name in list(self.store.objects):
            res = self.store.registry.by_key(key)
            if ns_name == name and res is not None and res.namespaced:
                with contextlib.suppress(ApiError):
                    self.store.delete(res, name, obj_name, propagation="Background")
        await self._wait_until_gone(lambda key: key[1] == name)
        ns = self.store.get(ns_res, "", name)
        ns["spec"]["finalizers"] = []
        self.store.update(ns_res, "", name, ns)

    async def _clean_crd(self, crd: Obj) -> None:
        spec = crd["spec"]
        res = next(iter(from_crd(crd)), None)
        if res is not None:
            for key, ns_name, obj_name in list(self.store.objects):
                if key == res.key:
                    with contextlib.suppress(ApiError):
                        self.store.delete(res, ns_name, obj_name, propagation="Background")
            await self._wait_until_gone(lambda key: key[0] == f"{spec['group']}/{res.plural}")
        crd_res = self.store.registry.find(
            "apiextensions.k8s.io", "v1", "customresourcedefinitions"
        )
        assert crd_res is not None
        current = self.store.get(crd_res, "", crd["metadata"]["name"])
        current["metadata"]["finalizers"] = [
            f for f in current["metadata"].get("finalizers", []) if f != CRD_FINALIZER
        ]
        self.store.update(crd_res, "", crd["metadata"]["name"], current)

    # -- garbage collection --------------------------------------------------------------------

    def _dependents(self, uid: str) -> list[tuple[Resource, Obj]]:
        found = []
        for (key, _, _), obj in list(self.store.objects.items()):
            refs = obj["metadata"].get("ownerReferences") or []
            res = self.store.registry.by_key(key)
            if res is not None and any(ref.get("uid") == uid for ref in refs):
                found.append((res, obj))
        return found

    def _delete(self, res: Resource, obj: Obj, propagation: str = "Background") -> None:
        meta = obj["metadata"]
        with contextlib.suppress(ApiError):
            self.store.delete(res, meta.get("namespace", ""), meta["name"], propagation)

    def _collect(self, uid: str, deleted: Obj) -> None:
        """An object is gone: delete dependents it was the last owner of, release waiting owners."""
        for res, obj in self._dependents(uid):
            refs = obj["metadata"].get("ownerReferences") or []
            if not any(self.store.exists_uid(ref["uid"]) for ref in refs):
                self._delete(res, obj)
        for ref in deleted["metadata"].get("ownerReferences") or []:
            found = self.store.by_uid(ref.get("uid", ""))
            if found and "foregroundDeletion" in (found[1]["metadata"].get("finalizers") or []):
                self._owner_deleting(found[1])

    def _owner_deleting(self, owner: Obj) -> None:
        found = self.store.by_uid(owner["metadata"]["uid"])
        if found is None:
            return
        res, current = found
        finalizers = list(current["metadata"].get("finalizers") or [])
        uid = current["metadata"]["uid"]
        dependents = self._dependents(uid)
        if "orphan" in finalizers:
            for dep_res, dep in dependents:
                body = copy.deepcopy(dep)
                body["metadata"]["ownerReferences"] = [
                    r for r in dep["metadata"]["ownerReferences"] if r.get("uid") != uid
                ]
                meta = body["metadata"]
                self.store.update(dep_res, meta.get("namespace", ""), meta["name"], body)
            finalizers.remove("orphan")
        elif "foregroundDeletion" in finalizers:
            for dep_res, dep in dependents:
                if not dep["metadata"].get("deletionTimestamp"):
                    self._delete(dep_res, dep, "Foreground")
            if self._dependents(uid):
                return
            finalizers.remove("foregroundDeletion")
        body = copy.deepcopy(current)
        body["metadata"]["finalizers"] = finalizers
        meta = body["metadata"]
        self.store.update(res, meta.get("namespace", ""), meta["name"], body)
