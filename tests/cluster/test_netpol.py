"""The node's NetworkPolicy agent (tests/cluster/netpol.py) against the real API server: what a
policy isolates is dropped, what its rules allow passes, replies and the node always pass."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from tests.cluster.cluster import Cluster
from tests.cluster.fixtures import Kubectl
from tests.cluster.netpol import matches
from tests.cluster.test_pods import pod, wait_phase

pytestmark = pytest.mark.timeout(90)

CONNECT = """
import json, socket, sys, time
address, port = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 10
while True:
    try:
        socket.create_connection((address, port), timeout=2).close()
        print(json.dumps("connected"), flush=True)
        break
    except ConnectionRefusedError:  # not listening yet: try again
        if time.monotonic() > deadline:
            print(json.dumps("refused"), flush=True)
            break
        time.sleep(0.2)
    except OSError as error:  # a drop: the SYN goes unanswered
        print(json.dumps(type(error).__name__), flush=True)
        break
"""


@pytest.fixture
def core(cluster: Cluster) -> Iterator[client.CoreV1Api]:
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    try:
        yield client.CoreV1Api(api)
    finally:
        api.close()


def policy(name: str, **spec: Any) -> str:
    return yaml.safe_dump({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                           "metadata": {"name": name}, "spec": spec})  # fmt: skip


def outcome(core: client.CoreV1Api, kubectl: Kubectl, namespace: str, name: str) -> Any:
    done = wait_phase(core, namespace, name, "Succeeded", "Failed")
    log = kubectl("logs", name).stdout
    assert done.status.phase == "Succeeded", log
    return json.loads(log)


def test_a_policy_admits_its_peers_on_its_ports_and_drops_the_rest(
    cluster: Cluster, core: client.CoreV1Api, kubectl: Kubectl, namespace: str
) -> None:
    kubectl.apply(policy(
        "web", podSelector={"matchLabels": {"app": "web"}},
        ingress=[{"from": [{"podSelector": {"matchLabels": {"role": "friend"}}}],
                  "ports": [{"port": "http"}]}],  # a named port: the container's 8080
    ))  # fmt: skip
    kubectl.apply(policy("shut", podSelector={"matchLabels": {"egress": "none"}},
                         policyTypes=["Egress"]))  # fmt: skip
    web = pod(
        "web", "",
        container={"command": ["python", "-m", "http.server", "8080"],
                   "ports": [{"name": "http", "containerPort": 8080}]},
        meta={"labels": {"app": "web"}},
    )  # fmt: skip
    core.create_namespaced_pod(namespace, web)
    web_ip = wait_phase(core, namespace, "web", "Running").status.pod_ip
    callers = {
        "friend": {"role": "friend"},
        "stranger": {"role": "stranger"},
        "muted": {"role": "friend", "egress": "none"},  # allowed in, but may not send
    }
    for name, labels in callers.items():
        caller = pod(name, CONNECT, container={"args": [web_ip, "8080"]}, meta={"labels": labels})
        core.create_namespaced_pod(namespace, caller)
    results = {name: outcome(core, kubectl, namespace, name) for name in callers}
    assert results == {"friend": "connected", "stranger": "TimeoutError", "muted": "TimeoutError"}
    # the node itself (kubelet probes, port-forward) is not isolated from its pods
    with urllib.request.urlopen(f"http://{web_ip}:8080/", timeout=5) as reply:
        assert reply.status == 200
    assert cluster.policy is not None
    assert cluster.policy.errors == []
    # without the policy, the stranger gets in
    kubectl("delete", "networkpolicy", "web")
    again = pod("again", CONNECT, container={"args": [web_ip, "8080"]},
                meta={"labels": {"role": "stranger"}})  # fmt: skip
    core.create_namespaced_pod(namespace, again)
    assert outcome(core, kubectl, namespace, "again") == "connected"


@pytest.mark.parametrize(
    ("selector", "labels", "chosen"),
    [
        ({}, {"a": "1"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]},
            {"a": "2"},
            True,
        ),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {}, False),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": "1"}, False),
    ],
)
def test_label_selectors_choose_as_the_api_documents(
    selector: dict[str, Any], labels: dict[str, str], chosen: bool
) -> None:
    assert matches(selector, labels) is chosen
