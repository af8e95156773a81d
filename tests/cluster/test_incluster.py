"""In-cluster API access: a pod of the project's image (python and the kubernetes client, as uid
10001 on a read-only root) uses ``load_incluster_config()`` (the kubelet's env, the projected
token, CA, ``kubernetes.default.svc`` through the ClusterIP) to read its own Pod and patch a
custom resource's status, allowed by a Role; what RBAC does not grant it is forbidden; the API
server's audit log shows it did both as its own ServiceAccount. A pod that opts out of the token
gets none."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest

from tests.cluster.cluster import Cluster
from tests.cluster.fixtures import Kubectl
from tests.cluster.test_kubectl import WIDGET, WIDGETS

pytestmark = pytest.mark.timeout(180)

GROUP = "contract.gaggle.test"

REPORTER = """
import os, pathlib, ssl, urllib.request
from kubernetes import client, config
config.load_incluster_config()
folder = pathlib.Path("/var/run/secrets/kubernetes.io/serviceaccount")
ns = (folder / "namespace").read_text()
me = client.CoreV1Api().read_namespaced_pod(os.environ["HOSTNAME"], ns)
status = {"phase": "Patched", "by": me.spec.service_account_name}
client.CustomObjectsApi().patch_namespaced_custom_object_status(
    "contract.gaggle.test", "v1", ns, "widgets", "w1", {"status": status})
# the Service's name resolves and the certificate is valid for it
context = ssl.create_default_context(cafile=str(folder / "ca.crt"))
url = f"https://kubernetes.default.svc:{os.environ['KUBERNETES_SERVICE_PORT']}/version"
bearer = {"Authorization": "Bearer " + (folder / "token").read_text()}
request = urllib.request.Request(url, headers=bearer)
print(urllib.request.urlopen(request, context=context, timeout=5).read().decode(), flush=True)
try:  # nothing grants it the widgets themselves
    client.CustomObjectsApi().delete_namespaced_custom_object(
        "contract.gaggle.test", "v1", ns, "widgets", "w1")
except client.ApiException as error:
    print("delete:", error.status, flush=True)
"""

ROLE = """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reporter}
rules:
- {apiGroups: [""], resources: [pods], verbs: [get]}
- {apiGroups: [contract.gaggle.test], resources: [widgets/status], verbs: [patch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reporter}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reporter}
subjects: [{kind: ServiceAccount, name: reporter}]
"""

SEALED = """
import os
from kubernetes import config
print(os.environ["KUBERNETES_SERVICE_HOST"], flush=True)
try:
    config.load_incluster_config()
except config.ConfigException as error:
    print(error, flush=True)
"""


def pod(image: str, name: str, code: str, **spec: Any) -> str:
    """A pod running ``code`` with the image's python, locked down as the operator's pods are."""
    container = {
        "name": "main",
        "image": image,
        "command": ["python", "-c", code],
        "securityContext": {"runAsUser": 10001, "runAsNonRoot": True,
                            "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }  # fmt: skip
    body = {"restartPolicy": "Never", "containers": [container],
            "volumes": [{"name": "tmp", "emptyDir": {}}], **spec}  # fmt: skip
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": body})


def eventually(check: Callable[[], Any], timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)
    return result


def phase(kubectl: Kubectl, name: str) -> str:
    return str(kubectl.json("get", "pod", name).get("status", {}).get("phase", ""))


def test_a_pod_patches_status_with_its_own_service_account(
    cluster: Cluster, kubectl: Kubectl, namespace: str
) -> None:
    kubectl.apply(WIDGETS)
    kubectl.apply(WIDGET.format(name="w1", size=1))
    kubectl.apply("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: reporter}\n")
    kubectl.apply(ROLE)
    kubectl.apply(pod(cluster.image, "reporter", REPORTER, serviceAccountName="reporter"))
    kubectl.apply(pod(cluster.image, "sealed", SEALED, automountServiceAccountToken=False))

    def ended(name: str) -> bool:
        return phase(kubectl, name) in ("Succeeded", "Failed")

    for name in ("reporter", "sealed"):
        eventually(partial(ended, name))
    assert phase(kubectl, "reporter") == "Succeeded", kubectl("logs", "reporter").stdout
    assert phase(kubectl, "sealed") == "Succeeded", kubectl("logs", "sealed").stdout
    status = kubectl.json("get", "widget", "w1")["status"]
    assert status == {"phase": "Patched", "by": "reporter"}
    log = kubectl("logs", "reporter").stdout
    assert '"gitVersion": "v1.37.2"' in log
    assert "delete: 403" in log

    # the kubelet's env as for every pod (the `kubernetes` Service's ClusterIP), but no token
    sealed = kubectl("logs", "sealed").stdout
    assert sealed == f"{cluster.net.service_ip(1)}\nService token file does not exist.\n"
    pods, widgets = f"/api/v1/namespaces/{namespace}/pods", f"/apis/{GROUP}/v1/namespaces"
    made = [
        (verb, uri.split("?")[0], code)
        for verb, uri, code in cluster.requests_by(namespace, "reporter")
    ]
    assert made == [
        ("get", f"{pods}/reporter", 200),
        ("patch", f"{widgets}/{namespace}/widgets/w1/status", 200),
        ("get", "/version", 200),
        ("delete", f"{widgets}/{namespace}/widgets/w1", 403),
    ]
    assert cluster.requests_by(namespace, "default") == []


def test_the_api_server_checks_tokens_and_client_certificates(
    cluster: Cluster, kubectl: Kubectl, namespace: str
) -> None:
    assert cluster.control is not None
    assert cluster.control.pki is not None
    context = ssl.create_default_context(cafile=str(cluster.control.pki.ca))
    kubectl.apply("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: probe}\n")
    token = kubectl("create", "token", "probe").stdout.strip()

    def get(bearer: str, path: str = "/version") -> int:
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        request = urllib.request.Request(f"{cluster.url}{path}", headers=headers)
        try:
            with urllib.request.urlopen(request, context=context, timeout=5) as reply:
                return int(reply.status)
        except urllib.error.HTTPError as error:
            return error.code

    assert get(token) == 200
    assert get(token, f"/api/v1/namespaces/{namespace}/secrets") == 403
    assert get("") == 200  # /version is open to anybody, as on any cluster
    assert get("", f"/api/v1/namespaces/{namespace}/pods") == 403  # system:anonymous
    assert get("forged") == 401
    assert [code for _, _, code in cluster.requests_by(namespace, "probe")] == [200, 403]
