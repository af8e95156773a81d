"""The operator's few Kubernetes calls: create a child (idempotently), list a LoadTest's pods,
delete its children. Sync client calls; kopf runs sync handlers in its thread pool.

Why a module of its own: the handlers read as the LoadTest's life, not as API plumbing, and one
place knows which API serves which kind — and how to read the API server's answers: a refusal
(``Refused``: 4xx, e.g. a quota, an admission webhook, RBAC) is final and carries its words; a
409 on an object of another owner, or one still being deleted (``Occupied``: a LoadTest deleted
and re-created at once, before the garbage collector is done), passes; anything else (5xx, 429,
the network) is raised as it is, for kopf to retry.
"""

from __future__ import annotations

import json
import os
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

_api: client.ApiClient | None = None
Manifest = dict[str, Any]


class Refused(Exception):
    """The API server refused to create a child, for a reason that retrying will not change."""

    def __init__(self, kind: str, name: str, status: int, words: str) -> None:
        self.kind, self.name, self.status, self.words = kind, name, status, words
        super().__init__(f"{kind} {name}: {words}")


class Occupied(Exception):
    """A child's name is taken by an object that is not this LoadTest's (yet): wait for it."""

    def __init__(self, kind: str, name: str, why: str) -> None:
        self.kind, self.name, self.why = kind, name, why
        super().__init__(f"{kind} {name} {why}")


def words(error: ApiException) -> str:
    """The API server's own message (its Status body), else the HTTP reason."""
    try:
        message = json.loads(error.body or "{}").get("message")
    except (ValueError, AttributeError):
        message = None
    return str(message or error.reason or error.status)


def _final(error: ApiException) -> bool:
    """A 4xx other than a conflict or too-many-requests: the same request fails again."""
    return 400 <= (error.status or 0) < 500 and error.status not in (409, 429)


def api() -> client.ApiClient:
    """In-cluster when in a pod, else the kubeconfig ($KUBECONFIG), as kubectl would."""
    global _api
    if _api is None:
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config()  # type: ignore[no-untyped-call]  # untyped library
            _api = client.ApiClient()
        else:
            _api = config.new_client_from_config()  # type: ignore[no-untyped-call]
    return _api


def _creator(kind: str) -> Any:
    core, rbac = client.CoreV1Api(api()), client.RbacAuthorizationV1Api(api())
    network = client.NetworkingV1Api(api())
    return {
        "NetworkPolicy": network.create_namespaced_network_policy,
        "ConfigMap": core.create_namespaced_config_map,
        "Secret": core.create_namespaced_secret,
        "Service": core.create_namespaced_service,
        "ServiceAccount": core.create_namespaced_service_account,
        "Pod": core.create_namespaced_pod,
        "Role": rbac.create_namespaced_role,
        "RoleBinding": rbac.create_namespaced_role_binding,
    }[kind]


def _reader(kind: str) -> Any:
    core, rbac = client.CoreV1Api(api()), client.RbacAuthorizationV1Api(api())
    network = client.NetworkingV1Api(api())
    return {
        "NetworkPolicy": network.read_namespaced_network_policy,
        "ConfigMap": core.read_namespaced_config_map,
        "Service": core.read_namespaced_service,
        "ServiceAccount": core.read_namespaced_service_account,
        "Pod": core.read_namespaced_pod,
        "Role": rbac.read_namespaced_role,
        "RoleBinding": rbac.read_namespaced_role_binding,
    }[kind]


def _deleter(kind: str) -> Any:
    core, rbac = client.CoreV1Api(api()), client.RbacAuthorizationV1Api(api())
    network = client.NetworkingV1Api(api())
    return {
        "NetworkPolicy": network.delete_namespaced_network_policy,
        "ConfigMap": core.delete_namespaced_config_map,
        "Secret": core.delete_namespaced_secret,
        "Service": core.delete_namespaced_service,
        "ServiceAccount": core.delete_namespaced_service_account,
        "Pod": core.delete_namespaced_pod,
        "Role": rbac.delete_namespaced_role,
        "RoleBinding": rbac.delete_namespaced_role_binding,
    }[kind]


def owner_uid(manifest: Manifest) -> str:
    """The uid of the LoadTest that owns this child (its controller ownerReference)."""
    owners = manifest["metadata"].get("ownerReferences", [])
    return next((str(o["uid"]) for o in owners if o.get("controller")), "")


def owned_by(item: Manifest, uid: str) -> bool:
    return any(o.get("uid") == uid for o in item["metadata"].get("ownerReferences") or [])


def create(manifest: Manifest, namespace: str) -> bool:
    """Create it; False when this LoadTest's own copy exists already (a resumed operator does not
    duplicate pods). Raises Refused or Occupied (see the module's docstring)."""
    kind, name = manifest["kind"], manifest["metadata"]["name"]
    try:
        _creator(kind)(namespace, manifest)
    except ApiException as error:
        if _final(error):
            raise Refused(kind, name, error.status, words(error)) from None
        if error.status != 409:
            raise
        if kind == "Secret":  # named for the owner's uid (children.token_name): this one's own
            return False
        existing = _read(kind, name, namespace)
        if existing is None:
            raise Occupied(kind, name, "was being deleted a moment ago") from None
        if existing["metadata"].get("deletionTimestamp"):
            raise Occupied(kind, name, "is still being deleted") from None
        if not owned_by(existing, owner_uid(manifest)):
            raise Occupied(
                kind,
                name,
                "belongs to another object (an earlier LoadTest of this "
                "name, not yet garbage-collected?)",
            ) from None
        return False
    return True


def _read(kind: str, name: str, namespace: str) -> Manifest | None:
    try:
        answer: Any = _reader(kind)(name, namespace, _preload_content=False)
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    item: Manifest = json.loads(answer.data)
    return item


def create_or_update(manifest: Manifest, namespace: str) -> None:
    """A ConfigMap whose content must follow the spec (a rerun with a new script): created, or
    its data replaced when this LoadTest's copy exists (only the data: a second controller
    ownerReference would be refused)."""
    if not create(manifest, namespace):
        name, body = manifest["metadata"]["name"], {"data": manifest.get("data", {})}
        try:
            client.CoreV1Api(api()).patch_namespaced_config_map(name, namespace, body)
        except ApiException as error:
            if _final(error):
                raise Refused("ConfigMap", name, error.status, words(error)) from None
            raise


def delete(kind: str, name: str, namespace: str) -> None:
    try:
        _deleter(kind)(name, namespace)
    except ApiException as error:
        if error.status != 404:
            raise


def pods(namespace: str, loadtest: str, uid: str) -> list[Manifest]:
    """The pods of the LoadTest with this uid: by label, then by owner, because an earlier
    LoadTest of the same name may still have pods terminating."""
    # Raw JSON, not the client's models: the pod-reading helpers take plain objects.
    listed: Any = client.CoreV1Api(api()).list_namespaced_pod(
        namespace, label_selector=f"gaggle.dev/loadtest={loadtest}", _preload_content=False
    )
    items: list[Manifest] = json.loads(listed.data)["items"]
    return [pod for pod in items if owned_by(pod, uid)]


def config_map_exists(namespace: str, name: str) -> bool:
    try:
        client.CoreV1Api(api()).read_namespaced_config_map(name, namespace)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def config_map(namespace: str, name: str) -> Manifest | None:
    """A ConfigMap as the API server has it (raw: binaryData stays base64); None when absent."""
    try:
        return _read("ConfigMap", name, namespace)
    except ApiException as error:
        if _final(error):
            raise Refused("ConfigMap", name, error.status, words(error)) from None
        raise


def config_maps(namespace: str, selector: str) -> list[Manifest]:
    """The ConfigMaps of a label selector (a LoadTest's history)."""
    try:
        listed: Any = client.CoreV1Api(api()).list_namespaced_config_map(
            namespace, label_selector=selector, _preload_content=False
        )
    except ApiException as error:
        if _final(error):
            raise Refused("ConfigMap", selector, error.status, words(error)) from None
        raise
    items: list[Manifest] = json.loads(listed.data)["items"]
    return items
