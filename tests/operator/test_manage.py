"""``gaggle-operator manage`` — the manager pod's process — writes its LoadTest's status: live
figures while it runs, then a summary whose totals equal the target's counters, the thresholds
and the verdict, and the full summary in its ConfigMap.

The API is the test cluster's real kube-apiserver; the manager and its workers run as host
processes here (the pods are the e2e tests' business), so the manager reaches the API through a
kubeconfig rather than its in-cluster ServiceAccount."""

from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from gaggle_operator.children import summary_config_map
from gaggle_operator.manage import kept_report
from tests.cluster.cluster import Cluster
from tests.conftest import ROOT, Target, finish, free_port, kill_leftovers, write_test
from tests.gaggle_mode.test_mode import TEST, start_worker
from tests.operator.test_crd import CRD
from tests.operator.test_spec import spec

TIMEOUT = 60


def test_the_manager_writes_live_figures_then_an_exact_summary_and_verdict(
    cluster: Cluster, namespace: str, kubectl: Any, target: Target, tmp_path: Path
) -> None:
    kubectl("apply", "-f", str(CRD))
    kubectl("wait", "--for", "condition=established", "crd/loadtests.gaggle.dev", "--timeout=20s")
    manifest = {"apiVersion": "gaggle.dev/v1alpha1", "kind": "LoadTest",
                "metadata": {"name": "web", "namespace": namespace}, "spec": spec()}  # fmt: skip
    kubectl.apply(yaml.safe_dump(manifest))
    kubectl.apply(yaml.safe_dump(summary_config_map("web")))
    test, port = write_test(tmp_path, TEST), free_port()
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig", namespace)
    manager = spawn_operator(
        "manage", "--loadtest", "web",
        "--namespace", namespace, "--", "run", test, "--manager", "--expect-workers", "2",
        "--manager-bind-host", "127.0.0.1", "--manager-bind-port", str(port),
        "--metrics-bind", f"127.0.0.1:{free_port()}", "--host", target.url, "-u", "4",
        "-r", "40", "-t", "5", "--no-reset-metrics",
        "--threshold", "requests(GET /) > 10", "--threshold", "p99 < 0.001",
        env={"KUBECONFIG": str(kubeconfig)},
    )  # fmt: skip
    workers = []
    try:
        time.sleep(0.5)
        workers = [start_worker(test, port) for _ in range(2)]
        live = wait_for_status(kubectl, "web", lambda s: s.get("live", {}).get("requests", 0) > 0)
        code, err = finish(manager, timeout=TIMEOUT)
        exits = [finish(w)[0] for w in workers]
    finally:
        kill_leftovers(manager, *workers)
    assert code == 3, err  # the run completed; one threshold failed
    assert exits == [0, 0]
    assert live["live"]["users"] == 4
    assert live["workers"]["text"] == "2/2"
    status = kubectl.json("get", "loadtest", "web")["status"]
    served = target.counts()
    summary = status["summary"]
    assert summary["requests"] == served["GET / 200"] + served["GET /landing 200"]
    assert summary["failures"] == 0
    assert summary["topRequests"][0]["name"] == "GET /"
    assert summary["topRequests"][0]["requests"] == served["GET / 200"]
    assert status["verdict"] == "Failed"
    rules = {rule["expression"]: rule for rule in status["thresholds"]}
    assert rules["requests(GET /) > 10"]["passed"] is True
    assert rules["requests(GET /) > 10"]["observed"] == served["GET / 200"]
    assert rules["p99 < 0.001"]["passed"] is False
    kept = kubectl.json("get", "configmap", "web-summary")
    full = json.loads(kept["data"]["summary.json"])
    assert full["summary"] == summary
    # finding 15: the HTML report outlives the pod, gzipped in the same ConfigMap
    said = status["report"]
    assert (said["kept"], said["configMap"], said["key"]) == (True, "web-summary", "report.html.gz")
    packed = base64.b64decode(kept["binaryData"][said["key"]])
    assert len(packed) == said["bytes"]
    page = gzip.decompress(packed)
    assert b"<html" in page
    assert b"/landing" in page
    assert {(r["method"], r["name"]) for r in full["requests"]} == {
        ("GET", "/"),
        ("GET", "/landing"),
    }


def wait_for_status(kubectl: Any, name: str, ready: Any) -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT
    while True:
        status: dict[str, Any] = kubectl.json("get", "loadtest", name).get("status", {})
        if ready(status):
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.3)


def spawn_operator(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """``gaggle-operator ARGS`` (as ``python -m gaggle_operator``) with its output captured."""
    return subprocess.Popen(
        [sys.executable, "-m", "gaggle_operator", *args], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, **env},
    )  # fmt: skip


def test_finding_15_a_report_too_big_for_the_config_map_is_said_so_not_half_kept(
    tmp_path: Path,
) -> None:
    report = tmp_path / "report.html"
    report.write_bytes(os.urandom(300_000))  # random: gzip cannot shrink it
    binary, said = kept_report(str(report), "web", room=200_000)
    assert binary == {}
    assert said["kept"] is False
    assert "report.html is 300" in said["why"]
    assert "more than the 200000 left in ConfigMap web-summary" in said["why"]
    binary, said = kept_report(str(report), "web", room=500_000)
    assert said == {"kept": True, "configMap": "web-summary", "key": "report.html.gz",
                    "bytes": len(base64.b64decode(binary["report.html.gz"]))}  # fmt: skip
    assert gzip.decompress(base64.b64decode(binary["report.html.gz"])) == report.read_bytes()
    assert kept_report(str(tmp_path / "none.html"), "web", room=1)[1]["kept"] is False
