"""The test cluster is the real Kubernetes: kubectl meets a v1.37 API server, the API server's own
metrics, RBAC that denies, admission that refuses (an extra plugin too, when the cluster asks for
it), the controller-manager's controllers (Deployments run on the node, owners' dependents are
collected, namespaces empty themselves) and a node whose kubelet keeps its Lease."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.cluster import binaries
from tests.cluster.cluster import Cluster
from tests.cluster.fixtures import Kubectl
from tests.cluster.realnode import NODE

pytestmark = pytest.mark.timeout(120)


def eventually(check: Callable[[], Any], timeout: float = 30, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"not reached in {timeout} s: {what}"
        time.sleep(0.1)
    return result


def test_kubectl_reports_the_real_v1_37_server(kubectl: Kubectl) -> None:
    version = json.loads(kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == binaries.KUBERNETES
    assert version["clientVersion"]["gitVersion"] == binaries.KUBERNETES


def test_the_api_server_serves_its_own_metrics(kubectl: Kubectl) -> None:
    metrics = kubectl("get", "--raw", "/metrics").stdout
    assert "apiserver_request_total{" in metrics
    assert "etcd_request_duration_seconds_bucket{" in metrics


def test_rbac_lets_an_edit_user_work_in_its_namespace_and_nowhere_else(
    cluster: Cluster, kubectl: Kubectl, namespace: str
) -> None:
    kubectl("create", "rolebinding", "jane-edit", "--clusterrole=edit", "--user=jane")
    jane = kubectl.as_user(cluster.kubeconfig_for("jane", ("developers",), namespace))
    jane("create", "configmap", "mine", "--from-literal=a=1")
    refused = jane("get", "configmaps", "-n", "kube-system", check=False)
    assert refused.returncode != 0
    assert 'User "jane" cannot list resource "configmaps"' in refused.stderr
    assert 'in the namespace "kube-system"' in refused.stderr
    denied = jane(
        "create",
        "clusterrolebinding",
        "me-admin",
        "--clusterrole=cluster-admin",
        "--user=jane",
        check=False,
    )
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr


def toolbox(cluster: Cluster) -> str:
    """The node's small image (busybox): ``true``, ``sleep``, ``sh``."""
    assert cluster.real is not None
    assert cluster.real.toolbox is not None
    return cluster.real.toolbox.name


def test_admission_refuses_what_a_quota_does_not_allow(cluster: Cluster, kubectl: Kubectl) -> None:
    kubectl("create", "quota", "compute", "--hard=limits.cpu=1,limits.memory=1Gi")
    container = {"name": "main", "image": toolbox(cluster), "command": ["true"]}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "besteffort"},
        "spec": {"containers": [container]},
    }
    eventually(
        lambda: kubectl.json("get", "quota", "compute").get("status", {}).get("hard"),
        what="the quota controller to fill the quota's status",
    )
    refused = kubectl("apply", "-f", "-", input=json.dumps(pod), check=False)
    assert refused.returncode != 0
    assert "failed quota: compute: must specify limits.cpu" in refused.stderr


def test_invalid_names_and_labels_are_refused_with_the_api_servers_words(kubectl: Kubectl) -> None:
    # v1.37 takes Service names that start with a digit (1k-users-manager), not dots or length
    for name in ("api.v2-manager", "x" * 64):
        service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                   "spec": {"ports": [{"port": 80}]}}  # fmt: skip
        refused = kubectl("apply", "-f", "-", input=json.dumps(service), check=False)
        assert refused.returncode != 0, name
        assert "metadata.name: Invalid value" in refused.stderr, refused.stderr
    labelled = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "x", "labels": {"run": "2025-06-01T10:00:00Z"}}}  # fmt: skip
    refused = kubectl("apply", "-f", "-", input=json.dumps(labelled), check=False)
    assert "a valid label must be an empty string or consist of alphanumeric" in refused.stderr


def test_a_deployment_runs_its_pods_on_the_node(cluster: Cluster, kubectl: Kubectl) -> None:
    kubectl(
        "create",
        "deployment",
        "sleepy",
        f"--image={toolbox(cluster)}",
        "--replicas=2",
        "--",
        "sleep",
        "600",
    )
    kubectl("rollout", "status", "deployment/sleepy", "--timeout=60s", timeout=70)
    pods = kubectl.json("get", "pods", "-l", "app=sleepy")["items"]
    assert len(pods) == 2
    assert {p["spec"]["nodeName"] for p in pods} == {NODE}
    assert all(p["status"]["phase"] == "Running" for p in pods)
    assert all(p["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet" for p in pods)


def test_the_garbage_collector_deletes_dependents_after_their_owner(kubectl: Kubectl) -> None:
    kubectl("create", "configmap", "owner")
    uid = kubectl.json("get", "configmap", "owner")["metadata"]["uid"]
    dependent = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "dependent",
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}
            ],
        },
    }
    kubectl("apply", "-f", "-", input=json.dumps(dependent))
    kubectl("delete", "configmap", "owner", "--wait=false")
    eventually(
        lambda: (
            not kubectl("get", "configmap", "dependent", "--ignore-not-found", "-o", "name").stdout
        ),
        what="the dependent to be collected",
    )


def test_each_namespace_gets_its_service_account_and_root_ca(kubectl: Kubectl) -> None:
    eventually(
        lambda: (
            kubectl("get", "serviceaccount", "default", "--ignore-not-found", "-o", "name").stdout
        ),
        what="the default ServiceAccount",
    )
    ca = eventually(
        lambda: kubectl.json("get", "configmap", "kube-root-ca.crt")["data"]["ca.crt"],
        what="kube-root-ca.crt",
    )
    assert ca.startswith("-----BEGIN CERTIFICATE-----")


def test_the_node_is_registered_ready_with_a_lease_its_kubelet_renews(cluster: Cluster) -> None:
    assert cluster.real is not None
    node = json.loads(cluster.kubectl("get", "node", NODE, "-o", "json"))
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert ready["Ready"] == "True"
    address = {"type": "InternalIP", "address": cluster.real.node_ip}
    assert address in node["status"]["addresses"]
    assert int(node["status"]["allocatable"]["pods"]) > 0

    def lease() -> dict[str, Any]:
        found = cluster.kubectl("get", "lease", "-n", "kube-node-lease", NODE, "-o", "json")
        spec: dict[str, Any] = json.loads(found)["spec"]
        return spec

    first = lease()
    assert first["holderIdentity"] == NODE
    # the kubelet renews it every quarter of its duration (10 s of 40)
    eventually(lambda: lease()["renewTime"] != first["renewTime"], 60, "the Lease renewed")


def test_an_extra_admission_plugin_is_on_when_the_cluster_asks(
    cluster: Cluster, kubectl: Kubectl, namespace: str
) -> None:
    """The session cluster enables OwnerReferencesPermissionEnforcement (as OpenShift does):
    an edit user may not block its owner's deletion with an ownerReference."""
    assert "OwnerReferencesPermissionEnforcement" in cluster.admission
    kubectl("create", "rolebinding", "e", "--clusterrole=edit", "--user=eve")
    eve = kubectl.as_user(cluster.kubeconfig_for("eve", namespace=namespace))
    eve("create", "configmap", "owner")
    uid = kubectl.json("get", "configmap", "owner")["metadata"]["uid"]

    def owned(block: bool) -> str:
        owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid,
                 "blockOwnerDeletion": block}  # fmt: skip
        meta = {"name": "owned", "ownerReferences": [owner]}
        return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta})

    refused = eve("apply", "-f", "-", input=owned(True), check=False)
    assert refused.returncode != 0
    assert "cannot set blockOwnerDeletion" in refused.stderr
    eve("apply", "-f", "-", input=owned(False))  # not blocking it: allowed
