"""The CRD in deploy/ and the operator's spec model are one contract: the same fields, and the
real kubectl accepts the CRD, explains it and applies a LoadTest (on the local cluster)."""

from __future__ import annotations

import time
from typing import Any

import yaml

from gaggle_operator.spec import SPEC_FIELDS, parse_spec
from tests.conftest import ROOT
from tests.operator.test_spec import spec

CRD = ROOT / "deploy" / "crd.yaml"


def leaves(schema: dict[str, Any], prefix: str = "") -> set[str]:
    """Dotted paths of a schema's fields; an open object (preserve-unknown) is one field."""
    if schema.get("type") == "array" and "properties" in schema.get("items", {}):
        return leaves(schema["items"], prefix + "[]")
    if "properties" not in schema or schema.get("x-kubernetes-preserve-unknown-fields"):
        return {prefix}
    found: set[str] = set()
    for name, child in schema["properties"].items():
        found |= leaves(child, f"{prefix}.{name}" if prefix else name)
    return found


def crd() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(CRD.read_text())
    return document


def test_the_crd_declares_exactly_the_fields_the_operator_reads() -> None:
    (version,) = crd()["spec"]["versions"]
    schema = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert leaves(schema) == SPEC_FIELDS


def test_every_field_has_a_description_for_kubectl_explain() -> None:
    def undescribed(schema: dict[str, Any], path: str) -> list[str]:
        missing = [] if schema.get("description") else [path]
        for name, child in schema.get("properties", {}).items():
            missing += undescribed(child, f"{path}.{name}")
        if "properties" in schema.get("items", {}):
            missing += undescribed(schema["items"], path + "[]")
        return [m for m in missing if not m.endswith("[]")]

    (version,) = crd()["spec"]["versions"]
    assert undescribed(version["schema"]["openAPIV3Schema"], "loadtest") == []


def test_a_spec_using_every_field_is_read() -> None:
    full = spec(
        extraConfigMaps=[{"name": "helpers", "mountPath": "/gaggle/helpers"}],
        throttleRequests=50, statusCodes=True, resetMetrics=False, args=["-v"],
        thresholds=[{"metric": "p95", "request": "GET /", "op": "<", "value": 300}],
        abortOnFail=True, imagePullPolicy="Always",
        workers={"replicas": 2, "template": {"spec": {"nodeSelector": {"pool": "load"}}}},
        manager={"template": {"metadata": {"labels": {"team": "a"}}}}, spread=True,
        startPolicy={"readyTimeoutSeconds": 60}, activeDeadlineSeconds=600,
        cleanup={"policy": "Always", "ttlSecondsAfterFinished": 30}, runId="7",
    )  # fmt: skip
    parsed = parse_spec(full)
    assert parsed.extra_config_maps == (("helpers", "/gaggle/helpers"),)
    assert (parsed.abort_on_fail, parsed.spread, parsed.run_id) == (True, True, "7")
    assert parsed.worker_template["spec"]["nodeSelector"] == {"pool": "load"}
    assert (parsed.cleanup_policy, parsed.cleanup_ttl, parsed.active_deadline) == (
        "Always", 30, 600)  # fmt: skip


def test_kubectl_applies_the_crd_explains_it_and_takes_a_loadtest(kubectl: Any) -> None:
    """On the test cluster's real API server, which also enforces the CRD's schema."""
    kubectl("apply", "-f", str(CRD))
    kubectl("wait", "--for", "condition=established", "crd/loadtests.gaggle.dev", "--timeout=20s")
    deadline = time.monotonic() + 30  # the API server publishes a new CRD's OpenAPI shortly after
    while (explain := kubectl("explain", "loadtest.spec.users", check=False)).returncode != 0:
        assert time.monotonic() < deadline, explain.stderr
        time.sleep(0.5)
    explained = explain.stdout
    assert "Concurrent users in the whole gaggle" in explained
    manifest = {"apiVersion": "gaggle.dev/v1alpha1", "kind": "LoadTest",
                "metadata": {"name": "smoke"}, "spec": spec()}  # fmt: skip
    kubectl.apply(yaml.safe_dump(manifest))
    wrong = {**manifest, "metadata": {"name": "wrong"}, "spec": {**spec(), "users": "many"}}
    refused = kubectl("apply", "-f", "-", input=yaml.safe_dump(wrong), check=False)
    assert refused.returncode != 0
    assert 'spec.users: Invalid value: "string": spec.users in body must be of type integer' in (
        refused.stderr
    )
    table = kubectl("get", "lt").stdout
    assert "smoke" in table
    for column in ("PHASE", "VERDICT", "WORKERS", "USERS", "RPS", "FAIL%", "P95", "AGE"):
        assert column in table
