"""Contract test of in-cluster API access: a pod uses ``load_incluster_config()`` as it would in a
real cluster (env, token, CA, ``kubernetes.default.svc``) to read its own Pod and patch a custom
resource's status; the API records that it did so as its own ServiceAccount. A pod that opts out
of the token gets none."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import serviceaccount
from tests.cluster.fixtures import Kubectl
from tests.cluster.server import Cluster
from tests.test_cluster_kubectl import WIDGET, WIDGETS

pytestmark = pytest.mark.timeout(60)

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
"""

SEALED = """
import os
from kubernetes import config
print(os.environ["KUBERNETES_SERVICE_HOST"], flush=True)
try:
    config.load_incluster_config()
except config.ConfigException as error:
    print(error, flush=True)  # the host's filesystem may hold an empty mount point there
"""


def pod(name: str, code: str, **spec: Any) -> str:
    container = {"name": "main", "image": "gaggle", "command": ["python", "-c", code]}
    body = {"restartPolicy": "Never", "containers": [container], **spec}
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": body})


def eventually(check: Callable[[], Any], timeout: float = 20) -> Any:
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
    if cluster.kubelet is None or cluster.kubelet.net is None:
        pytest.skip("the token is bind-mounted: needs pod network and mount namespaces (root)")
    secrets_folder = Path("/var/run/secrets")
    was_there = secrets_folder.exists()
    kubectl.apply(WIDGETS)
    kubectl.apply(WIDGET.format(name="w1", size=1))
    kubectl.apply("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: reporter}\n")
    kubectl.apply(pod("reporter", REPORTER, serviceAccountName="reporter"))
    kubectl.apply(pod("sealed", SEALED, automountServiceAccountToken=False))

    for name in ("reporter", "sealed"):
        eventually(lambda name=name: phase(kubectl, name) in ("Succeeded", "Failed"))
    assert phase(kubectl, "reporter") == "Succeeded", kubectl("logs", "reporter").stdout
    assert phase(kubectl, "sealed") == "Succeeded", kubectl("logs", "sealed").stdout
    status = kubectl.json("get", "widget", "w1")["status"]
    assert status == {"phase": "Patched", "by": "reporter"}
    assert '"gitVersion"' in kubectl("logs", "reporter").stdout

    api = cluster.incluster
    assert api is not None
    assert api.host == cluster.kubelet.host_ip
    # env as for every pod, but no token
    assert kubectl("logs", "sealed").stdout == f"{api.host}\nService token file does not exist.\n"
    pods, widgets = f"/api/v1/namespaces/{namespace}/pods", f"/apis/{GROUP}/v1/namespaces"
    assert cluster.requests_by(namespace, "reporter") == [
        ("GET", f"{pods}/reporter"),
        ("PATCH", f"{widgets}/{namespace}/widgets/w1/status"),
        ("GET", "/version"),
    ]
    assert cluster.requests_by(namespace, "default") == []
    if not was_there:  # the mount point made on the host goes with the pods
        eventually(lambda: not secrets_folder.exists())


def test_https_checks_the_token_and_the_host_uses_plain_http(cluster: Cluster) -> None:
    api = cluster.incluster
    assert api is not None
    context = ssl.create_default_context(cafile=str(api.ca))

    def get(token: str) -> int:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        request = urllib.request.Request(f"{api.url}/version", headers=headers)
        try:
            with urllib.request.urlopen(request, context=context, timeout=5) as reply:
                return int(reply.status)
        except urllib.error.HTTPError as error:
            return error.code

    assert get(serviceaccount.token("ns-x", "probe")) == 200
    assert get("") == 200  # anonymous, as the host's kubeconfig is: no RBAC here
    assert get("forged") == 401
    assert cluster.requests_by("ns-x", "probe") == [("GET", "/version")]
