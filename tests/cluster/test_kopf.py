"""Contract test of the local cluster with real kopf: a tiny operator in a thread reacts to a custom
resource's creation, update and deletion, holding the deletion with its finalizer meanwhile."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import kopf
import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.cluster.cluster import Cluster
from tests.cluster.test_kubectl import CRD

pytestmark = pytest.mark.timeout(60)

GROUP, PLURAL = "contract.gaggle.test", "sprockets"


@pytest.fixture
def custom(cluster: Cluster) -> Iterator[client.CustomObjectsApi]:
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    crd = yaml.safe_load(
        CRD.format(kind="Sprocket", plural=PLURAL, singular="sprocket", short="sp")
    )
    try:
        client.ApiextensionsV1Api(api).create_custom_resource_definition(crd)
    except ApiException as error:
        if error.status != 409:  # 409: another test made it already
            raise
    try:
        yield client.CustomObjectsApi(api)
    finally:
        api.close()


def start_operator(
    cluster: Cluster, namespace: str, seen: list[tuple[str, Any]]
) -> Callable[[], None]:
    """Run a kopf operator for ``namespace`` in a thread; returns the function that stops it."""
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        control = cluster.control
        assert control is not None
        assert control.pki is not None
        assert control.admin is not None
        return kopf.ConnectionInfo(
            server=cluster.url, ca_path=str(control.pki.ca), default_namespace=namespace,
            certificate_path=str(control.admin.cert), private_key_path=str(control.admin.key),
        )  # fmt: skip

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.watching.server_timeout = 10
        settings.posting.level = 20

    @kopf.on.create(GROUP, "v1", PLURAL, id="created", registry=registry)
    def created(name: str, spec: dict[str, Any], **_: Any) -> dict[str, Any]:
        seen.append(("create", (name, spec["size"])))
        return {"made": True}

    @kopf.on.update(GROUP, "v1", PLURAL, id="updated", field="spec.size", registry=registry)
    def updated(old: Any, new: Any, **_: Any) -> None:
        seen.append(("update", (old, new)))

    @kopf.on.delete(GROUP, "v1", PLURAL, id="deleted", registry=registry)
    def deleted(name: str, **_: Any) -> None:
        seen.append(("delete", name))

    stop, ready = threading.Event(), threading.Event()
    operator = kopf.operator(
        registry=registry, standalone=True, namespaces=[namespace], stop_flag=stop, ready_flag=ready
    )
    thread = threading.Thread(target=asyncio.run, args=(operator,), daemon=True)
    thread.start()
    assert ready.wait(20), "kopf did not get ready"

    def halt() -> None:
        stop.set()
        thread.join(20)
        assert not thread.is_alive(), "kopf did not stop"

    return halt


def eventually(check: Callable[[], Any], timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)
    return result


def test_kopf_handles_create_update_delete_with_finalizers(
    cluster: Cluster, custom: client.CustomObjectsApi, namespace: str
) -> None:
    seen: list[tuple[str, Any]] = []
    halt = start_operator(cluster, namespace, seen)
    try:
        body = {
            "apiVersion": f"{GROUP}/v1",
            "kind": "Sprocket",
            "metadata": {"name": "s1"},
            "spec": {"size": 1},
        }
        custom.create_namespaced_custom_object(GROUP, "v1", namespace, PLURAL, body)

        def get() -> dict[str, Any]:
            got: dict[str, Any] = custom.get_namespaced_custom_object(
                GROUP, "v1", namespace, PLURAL, "s1"
            )
            return got

        eventually(lambda: ("create", ("s1", 1)) in seen)
        done = eventually(lambda: get().get("status", {}).get("created"))
        assert done == {"made": True}
        assert any("kopf" in f for f in get()["metadata"].get("finalizers", []))

        custom.patch_namespaced_custom_object(
            GROUP, "v1", namespace, PLURAL, "s1", {"spec": {"size": 2}}
        )
        eventually(lambda: ("update", (1, 2)) in seen)

        custom.delete_namespaced_custom_object(GROUP, "v1", namespace, PLURAL, "s1")
        eventually(lambda: ("delete", "s1") in seen)

        def gone() -> bool:
            try:
                get()
            except ApiException as error:
                return error.status == 404
            return False

        eventually(gone)
        assert [kind for kind, _ in seen] == ["create", "update", "delete"]
    finally:
        halt()
