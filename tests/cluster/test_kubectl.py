"""Real kubectl against the test cluster's real API server: CRDs, custom resources (pruned to
their schema), printer columns, watches, explain, strategic merge of built-in kinds, selectors,
cascading deletion."""

from __future__ import annotations

import json
import queue
import threading
import time

import pytest

from tests.cluster.fixtures import Kubectl

pytestmark = pytest.mark.timeout(60)

CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {plural}.contract.gaggle.test
spec:
  group: contract.gaggle.test
  names: {{kind: {kind}, plural: {plural}, singular: {singular}, shortNames: [{short}]}}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {{status: {{}}}}
    additionalPrinterColumns:
    - {{name: Size, type: integer, jsonPath: .spec.size}}
    - {{name: Phase, type: string, jsonPath: .status.phase}}
    - {{name: Age, type: date, jsonPath: .metadata.creationTimestamp}}
    schema:
      openAPIV3Schema:
        type: object
        description: A widget for the contract tests.
        properties:
          spec:
            type: object
            description: What the widget should be.
            properties:
              size: {{type: integer, description: "How big the widget is, in widget units."}}
              color: {{type: string}}
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
"""
WIDGETS = CRD.format(kind="Widget", plural="widgets", singular="widget", short="wd")

WIDGET = """
apiVersion: contract.gaggle.test/v1
kind: Widget
metadata:
  name: {name}
  labels: {{app: contract}}
spec:
  size: {size}
  color: blue
"""


@pytest.fixture
def widgets(kubectl: Kubectl) -> Kubectl:
    """kubectl, with the Widget CRD applied and established."""
    kubectl.apply(WIDGETS)
    kubectl("wait", "--for", "condition=established", "crd/widgets.contract.gaggle.test")
    return kubectl


def test_a_crd_applied_with_kubectl_is_established_and_served(kubectl: Kubectl) -> None:
    kubectl.apply(WIDGETS)
    done = kubectl(
        "wait",
        "--for",
        "condition=established",
        "--timeout=10s",
        "crd/widgets.contract.gaggle.test",
    )
    assert "condition met" in done.stdout
    listed = kubectl("api-resources", "--api-group=contract.gaggle.test").stdout
    assert "widgets" in listed
    assert "wd" in listed.split()
    assert kubectl("get", "wd").stderr.startswith("No resources found")


def test_custom_resources_apply_get_patch_delete(widgets: Kubectl) -> None:
    widgets.apply(WIDGET.format(name="w1", size=3))
    first = widgets.json("get", "widget", "w1")
    assert first["spec"] == {"size": 3, "color": "blue"}
    assert first["metadata"]["generation"] == 1
    assert first["metadata"]["uid"]
    assert first["metadata"]["creationTimestamp"]

    widgets.apply(WIDGET.format(name="w1", size=4))
    widgets("patch", "widget", "w1", "--type", "merge", "-p", '{"spec": {"color": "red"}}')
    widgets(
        "patch",
        "wd",
        "w1",
        "--type",
        "json",
        "-p",
        '[{"op": "add", "path": "/spec/x", "value": 1}]',
    )
    after = widgets.json("get", "widget", "w1")
    assert after["spec"] == {"size": 4, "color": "red"}  # x is pruned: the schema lacks it
    assert after["metadata"]["generation"] == 3  # the pruned patch changed nothing
    assert int(after["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])

    # /status is isolated both ways: the main resource ignores status, /status ignores the rest
    widgets("patch", "wd", "w1", "--type", "merge", "-p", '{"status": {"phase": "Main"}}')
    assert "status" not in widgets.json("get", "wd", "w1")
    status = '{"status": {"phase": "Ready"}, "spec": {"size": 99}}'
    widgets("patch", "wd", "w1", "--subresource=status", "--type", "merge", "-p", status)
    got = widgets.json("get", "wd", "w1")
    assert got["status"] == {"phase": "Ready"}
    assert got["spec"]["size"] == 4
    assert got["metadata"]["generation"] == 3

    refused = widgets("patch", "wd", "w1", "-p", '{"spec": {"size": 1}}', check=False)
    assert refused.returncode != 0  # strategic merge is not for custom resources

    assert "deleted" in widgets("delete", "widget", "w1").stdout
    missing = widgets("get", "widget", "w1", check=False)
    assert missing.returncode == 1
    assert 'widgets.contract.gaggle.test "w1" not found' in missing.stderr


def test_get_shows_the_printer_columns(widgets: Kubectl) -> None:
    widgets.apply(WIDGET.format(name="shown", size=7))
    widgets("patch", "wd", "shown", "--subresource=status", "--type", "merge", "-p",
            '{"status": {"phase": "Running"}}')  # fmt: skip
    lines = widgets("get", "widgets").stdout.splitlines()
    assert lines[0].split() == ["NAME", "SIZE", "PHASE", "AGE"]
    assert lines[1].split()[:3] == ["shown", "7", "Running"]


def test_get_watch_sees_changes(widgets: Kubectl) -> None:
    widgets.apply(WIDGET.format(name="watched", size=1))
    watch = widgets.spawn("get", "wd", "-w", "--output-watch-events")
    lines: queue.Queue[str] = queue.Queue()
    assert watch.stdout is not None
    stdout = watch.stdout

    def pump() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()

    def next_line() -> list[str]:
        return lines.get(timeout=15).split()

    try:
        assert next_line()[:2] == ["EVENT", "NAME"]
        assert next_line()[:3] == ["ADDED", "watched", "1"]
        widgets("patch", "wd", "watched", "--type", "merge", "-p", '{"spec": {"size": 2}}')
        assert next_line()[:3] == ["MODIFIED", "watched", "2"]
        widgets("delete", "wd", "watched")
        assert next_line()[:2] == ["DELETED", "watched"]
    finally:
        watch.kill()
        watch.wait()


def test_explain_reads_the_crd_schema(widgets: Kubectl) -> None:
    out = widgets("explain", "widgets.spec.size").stdout
    assert "How big the widget is, in widget units." in out
    assert "integer" in out


def test_built_in_kinds_merge_strategically_by_name(kubectl: Kubectl) -> None:
    made = kubectl("create", "configmap", "settings", "--from-literal=a=1", "--dry-run=client",
                   "-o", "yaml").stdout  # fmt: skip
    kubectl.apply(made)
    assert kubectl.json("get", "cm", "settings")["data"] == {"a": "1"}
    deployment = kubectl("create", "deployment", "web", "--image=one", "--dry-run=client",
                         "-o", "json").stdout  # fmt: skip
    kubectl.apply(deployment)
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "two"}]}}}}
    kubectl("patch", "deployment", "web", "-p", json.dumps(patch))
    containers = kubectl.json("get", "deploy", "web")["spec"]["template"]["spec"]["containers"]
    assert sorted((c["name"], c["image"]) for c in containers) == [("one", "one"), ("side", "two")]


def test_label_selectors_equality_and_set_based(kubectl: Kubectl) -> None:
    for name, labels in [("a", "tier=web"), ("b", "tier=db,canary=yes"), ("c", "tier=cache")]:
        manifest = kubectl("create", "configmap", name, "--dry-run=client", "-o", "yaml").stdout
        kubectl.apply(manifest)
        kubectl("label", "cm", name, *labels.split(","))

    def names(selector: str) -> list[str]:
        return kubectl("get", "cm", "-l", selector, "-o", "name").stdout.split()

    assert names("tier in (web,db),!canary") == ["configmap/a"]
    assert names("tier,tier!=web") == ["configmap/b", "configmap/c"]
    assert names("canary") == ["configmap/b"]
    assert names("tier,tier notin (web)") == ["configmap/b", "configmap/c"]


def test_deleting_a_crd_deletes_its_objects(kubectl: Kubectl) -> None:
    kubectl.apply(CRD.format(kind="Gadget", plural="gadgets", singular="gadget", short="gd"))
    kubectl("wait", "--for", "condition=established", "crd/gadgets.contract.gaggle.test")
    kubectl.apply(WIDGET.format(name="g1", size=1).replace("Widget", "Gadget"))
    assert kubectl("get", "gadgets", "-o", "name").stdout.split() == [
        "gadget.contract.gaggle.test/g1"
    ]
    kubectl("delete", "crd", "gadgets.contract.gaggle.test", "--timeout=20s")
    deadline = time.monotonic() + 10
    while "gadgets" in kubectl("api-resources", "--api-group=contract.gaggle.test").stdout:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert kubectl("get", "gadgets", check=False).returncode != 0
