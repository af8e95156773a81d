"""Contract tests of the local cluster's API semantics with the real kubernetes Python client:
optimistic concurrency, watches (resume, 410 Gone), selectors, generateName, dryRun, finalizers,
garbage collection, namespaces, pagination, Events and Leases."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from tests.cluster.fixtures import create_namespace, delete_namespace
from tests.cluster.server import Cluster

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def core(cluster: Cluster) -> Iterator[client.CoreV1Api]:
    # an explicit config file: the client fixes its default kubeconfig path at import
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    try:
        yield client.CoreV1Api(api)
    finally:
        api.close()


def cm(name: str, **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, **meta}, "data": {"k": "v"}}


def eventually(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def exists(core: client.CoreV1Api, namespace: str, name: str) -> bool:
    try:
        core.read_namespaced_config_map(name, namespace)
    except ApiException as error:
        if error.status != 404:
            raise
        return False
    return True


def test_a_stale_resource_version_is_a_409_conflict(core: client.CoreV1Api, namespace: str) -> None:
    made = core.create_namespaced_config_map(namespace, cm("c"))
    made.data = {"k": "first"}
    core.replace_namespaced_config_map("c", namespace, made)
    made.data = {"k": "second"}
    with pytest.raises(ApiException) as conflict:
        core.replace_namespaced_config_map("c", namespace, made)
    assert conflict.value.status == 409
    with pytest.raises(ApiException) as exists_already:
        core.create_namespaced_config_map(namespace, cm("c"))
    assert exists_already.value.status == 409
    # a no-op update keeps the resourceVersion
    current = core.read_namespaced_config_map("c", namespace)
    same = core.replace_namespaced_config_map("c", namespace, current)
    assert same.metadata.resource_version == current.metadata.resource_version


def test_watch_resumes_from_a_resource_version_and_expires_with_410(
    cluster: Cluster, core: client.CoreV1Api, namespace: str
) -> None:
    start = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.create_namespaced_config_map(namespace, cm("w1"))
    core.patch_namespaced_config_map("w1", namespace, {"data": {"k": "v2"}})
    core.delete_namespaced_config_map("w1", namespace)
    events = watch.Watch().stream(
        core.list_namespaced_config_map, namespace, resource_version=start, timeout_seconds=2
    )
    seen = [(e["type"], e["object"].metadata.name) for e in events]
    assert seen == [("ADDED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w1")]

    assert cluster.store is not None
    cluster.call(cluster.store.compact)
    with pytest.raises(ApiException) as gone:
        for _ in watch.Watch().stream(
            core.list_namespaced_config_map, namespace, resource_version=start, timeout_seconds=2
        ):
            pass
    assert gone.value.status == 410


def test_selectors_generate_name_and_dry_run(core: client.CoreV1Api, namespace: str) -> None:
    made = core.create_namespaced_config_map(namespace, cm("", generateName="gen-"))
    assert made.metadata.name.startswith("gen-")
    assert len(made.metadata.name) == 9
    core.create_namespaced_config_map(namespace, cm("labelled", labels={"role": "a"}))
    dry = core.create_namespaced_config_map(namespace, cm("dry"), dry_run="All")
    assert dry.metadata.name == "dry"
    assert not exists(core, namespace, "dry")

    by_field = core.list_namespaced_config_map(namespace, field_selector="metadata.name=labelled")
    assert [i.metadata.name for i in by_field.items] == ["labelled"]
    not_it = core.list_namespaced_config_map(namespace, field_selector="metadata.name!=labelled")
    assert [i.metadata.name for i in not_it.items] == [made.metadata.name]
    by_label = core.list_namespaced_config_map(namespace, label_selector="role in (a,b)")
    assert [i.metadata.name for i in by_label.items] == ["labelled"]

    page = core.list_namespaced_config_map(namespace, limit=1)
    assert len(page.items) == 1
    assert page.metadata._continue
    rest = core.list_namespaced_config_map(namespace, limit=1, _continue=page.metadata._continue)
    assert rest.items[0].metadata.name != page.items[0].metadata.name

    core.delete_collection_namespaced_config_map(namespace, label_selector="role=a")
    assert not exists(core, namespace, "labelled")
    assert exists(core, namespace, made.metadata.name)


def test_finalizers_hold_deletion_until_removed(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_config_map(namespace, cm("held", finalizers=["test.gaggle/hold"]))
    core.delete_namespaced_config_map("held", namespace)
    held = core.read_namespaced_config_map("held", namespace)
    assert held.metadata.deletion_timestamp is not None
    core.patch_namespaced_config_map("held", namespace, {"metadata": {"finalizers": None}})
    assert not exists(core, namespace, "held")


def owned(owner: Any) -> dict[str, Any]:
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": owner.metadata.name}
    return {"ownerReferences": [{**ref, "uid": owner.metadata.uid}]}


@pytest.mark.parametrize("policy", ["Background", "Foreground", "Orphan"])
def test_owner_references_are_garbage_collected(
    core: client.CoreV1Api, namespace: str, policy: str
) -> None:
    owner = core.create_namespaced_config_map(namespace, cm("owner"))
    core.create_namespaced_config_map(namespace, cm("child", **owned(owner)))
    body = client.V1DeleteOptions(propagation_policy=policy)
    core.delete_namespaced_config_map("owner", namespace, body=body)
    eventually(lambda: not exists(core, namespace, "owner"))
    if policy == "Orphan":
        child = core.read_namespaced_config_map("child", namespace)
        assert not child.metadata.owner_references
    else:
        eventually(lambda: not exists(core, namespace, "child"))


def test_deleting_a_namespace_removes_what_is_in_it(
    cluster: Cluster, core: client.CoreV1Api
) -> None:
    name = f"doomed-{time.monotonic_ns() % 100000}"
    create_namespace(cluster, name)
    try:
        core.create_namespaced_config_map(name, cm("inside"))
        core.delete_namespace(name)
        eventually(lambda: name not in [n.metadata.name for n in core.list_namespace().items])
        with pytest.raises(ApiException) as gone:
            core.create_namespaced_config_map(name, cm("late"))
        assert gone.value.status in (403, 404)
    finally:
        delete_namespace(cluster, name)


def test_events_and_leases_are_stored(cluster: Cluster, namespace: str) -> None:
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    try:
        event = {
            "metadata": {"generateName": "e-"},
            "involvedObject": {"kind": "ConfigMap", "name": "x", "namespace": namespace},
            "reason": "Tested",
            "message": "hello",
            "type": "Normal",
        }
        client.CoreV1Api(api).create_namespaced_event(namespace, event)
        reasons = [e.reason for e in client.CoreV1Api(api).list_namespaced_event(namespace).items]
        assert reasons == ["Tested"]
        leases = client.CoordinationV1Api(api)
        spec = {"holderIdentity": "me", "leaseDurationSeconds": 15}
        leases.create_namespaced_lease(namespace, {"metadata": {"name": "l"}, "spec": spec})
        assert leases.read_namespaced_lease("l", namespace).spec.holder_identity == "me"
    finally:
        api.close()
