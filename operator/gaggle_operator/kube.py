"""The operator's few Kubernetes calls: create a child (idempotently), list a LoadTest's pods,
delete its children. Sync client calls; kopf runs sync handlers in its thread pool.

Why a module of its own: the handlers read as the LoadTest's life, not as API plumbing, and one
place knows which API serves which kind.
"""

from __future__ import annotations

import json
import os
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

_api: client.ApiClient | None = None
Manifest = dict[str, Any]


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
    return {
        "ConfigMap": core.create_namespaced_config_map,
        "Secret": core.create_namespaced_secret,
        "Service": core.create_namespaced_service,
        "ServiceAccount": core.create_namespaced_service_account,
        "Pod": core.create_namespaced_pod,
        "Role": rbac.create_namespaced_role,
        "RoleBinding": rbac.create_namespaced_role_binding,
    }[kind]


def _deleter(kind: str) -> Any:
    core, rbac = client.CoreV1Api(api()), client.RbacAuthorizationV1Api(api())
    return {
        "ConfigMap": core.delete_namespaced_config_map,
        "Secret": core.delete_namespaced_secret,
        "Service": core.delete_namespaced_service,
        "ServiceAccount": core.delete_namespaced_service_account,
        "Pod": core.delete_namespaced_pod,
        "Role": rbac.delete_namespaced_role,
        "RoleBinding": rbac.delete_namespaced_role_binding,
    }[kind]


def create(manifest: Manifest, namespace: str) -> bool:
    """Create it; False when it exists already (a resumed operator does not duplicate pods)."""
    try:
        _creator(manifest["kind"])(namespace, manifest)
    except ApiException as error:
        if error.status == 409:
            return False
        raise
    return True


def create_or_update(manifest: Manifest, namespace: str) -> None:
    """A ConfigMap whose content must follow the spec (a rerun with a new script): created, or
    its data replaced when it exists."""
    if not create(manifest, namespace):
        name = manifest["metadata"]["name"]
        client.CoreV1Api(api()).patch_namespaced_config_map(name, namespace, manifest)


def delete(kind: str, name: str, namespace: str) -> None:
    try:
        _deleter(kind)(name, namespace)
    except ApiException as error:
        if error.status != 404:
            raise


def pods(namespace: str, loadtest: str) -> list[Manifest]:
    # Raw JSON, not the client's models: the pod-reading helpers take plain objects.
    listed: Any = client.CoreV1Api(api()).list_namespaced_pod(
        namespace, label_selector=f"gaggle.dev/loadtest={loadtest}", _preload_content=False
    )
    items: list[Manifest] = json.loads(listed.data)["items"]
    return items


def config_map_exists(namespace: str, name: str) -> bool:
    try:
        client.CoreV1Api(api()).read_namespaced_config_map(name, namespace)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True
