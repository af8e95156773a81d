"""A LoadTest's run history (history.py): each run's ConfigMap, its name, the pruning, the rows of
status.history and the baseline run a spec chooses — first without a cluster, then on the real
control plane with the operator (tests/cluster)."""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any

import pytest
from kubernetes import config

from gaggle.options.argv import parse_run_args
from gaggle_operator import comparison, history, kube, status
from gaggle_operator.children import manager_pod
from gaggle_operator.comparison import REPORT_KEY, change_text, status_comparison
from gaggle_operator.spec import Baseline, SpecError, parse_spec
from tests.cluster.cluster import Cluster
from tests.cluster.fixtures import Kubectl
from tests.conftest import Target
from tests.operator.test_crd import CRD
from tests.operator.test_spec import spec
from tests.support.operator_harness import FINAL, Operator, loadtest, story

REGRESSION = {"metric": "p95", "op": "<", "baseline": "+10%"}  # a regression rule
# What Kubernetes takes as a ConfigMap's name (a DNS-1123 subdomain).
SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def document(run: str, requests: int = 100, verdict: str | None = "Passed") -> dict[str, Any]:
    """A manager's JSON summary (manage.py's shape) for run ``run``."""
    summary = {"requests": requests, "failures": 1, "failRatio": 0.01, "rps": 50.0,
               "durationSeconds": 2.0, "latencyMs": {"p95": 12.5}}  # fmt: skip
    return {"runId": run, "summary": summary, **({"verdict": verdict} if verdict else {})}


def kept(
    run: str, number: int, phase: str = "Succeeded", verdict: str | None = "Passed"
) -> dict[str, Any]:
    """A history ConfigMap as history.manifest makes it."""
    made = document(run, verdict=verdict)
    row = history.row(run, f"2030-01-01T00:00:{number:02d}Z", phase, None, made)
    report = {"schema": "gaggle-report/1", "requests": []}
    data = {history.SUMMARY_KEY: json.dumps(made), REPORT_KEY: json.dumps(report)}
    return history.manifest("web", run, row["startTime"], number, row, {"data": data})


def test_a_run_id_becomes_a_valid_stable_and_distinct_config_map_name() -> None:
    assert history.config_map_name("web", "7") == "web-run-7"
    assert history.config_map_name("web", "nightly-3") == "web-run-nightly-3"
    changed = history.config_map_name("web", "Build_7")
    assert re.fullmatch(r"web-run-build-7-[0-9a-f]{10}", changed), changed
    assert history.config_map_name("web", "Build_7") == changed  # stable
    # runIds a plain lowercasing would merge stay apart; the raw runId is in an annotation
    alike = {history.config_map_name("web", r) for r in ("a.b", "a-b", "A-b", "a_b", "A.B")}
    assert len(alike) == 5
    longest = history.config_map_name("a" * 55, "Z" + "_." * 30 + "9")  # the CRD's longest
    assert len(longest) <= 253
    for name in (changed, longest, history.config_map_name("web", "1.2"), *alike):
        assert SUBDOMAIN.match(name), name
    made = kept("Build_7", 1)
    assert made["metadata"]["annotations"][history.RUN_ID] == "Build_7"
    assert made["metadata"]["labels"]["gaggle.dev/run"] == "Build_7"
    assert made["metadata"]["labels"]["gaggle.dev/role"] == "history"


def test_the_oldest_runs_are_pruned_past_the_limit() -> None:
    items = [kept("3", 3), kept("1", 1), kept("10", 10), kept("2", 2)]
    kept_items, pruned = history.split(items, 2)
    assert [i["metadata"]["name"] for i in kept_items] == ["web-run-10", "web-run-3"]
    assert [i["metadata"]["name"] for i in pruned] == ["web-run-2", "web-run-1"]
    assert history.split(items, 0) == ([], history.newest_first(items))
    assert history.split(items, 10)[1] == []


def test_a_history_row_holds_the_runs_figures_from_its_summary() -> None:
    made = kept("4", 4)
    row = history.run_row(made)
    assert row | {"endTime": "-"} == {
        "runId": "4", "startTime": "2030-01-01T00:00:04Z", "endTime": "-",
        "phase": "Succeeded", "verdict": "Passed", "durationSeconds": 2.0, "requests": 100,
        "rps": 50.0, "failPercent": 1.0, "p95Ms": 12.5, "configMap": "web-run-4",
    }  # fmt: skip
    # the summary is copied beside the row
    assert json.loads(made["data"][history.SUMMARY_KEY])["summary"]["requests"] == 100
    # a run that failed before its manager wrote anything: its phase and reason, no figures
    failed = history.row("5", "2030-01-01T00:00:05Z", "Failed", "ManagerLost", None)
    assert {k: failed[k] for k in ("runId", "phase", "reason")} == {
        "runId": "5", "phase": "Failed", "reason": "ManagerLost"}  # fmt: skip
    assert "requests" not in failed
    assert "verdict" not in failed


def test_only_this_runs_summary_is_copied() -> None:
    mine = {"data": {history.SUMMARY_KEY: json.dumps(document("2"))}}
    assert history.summary_document(mine, "2") == document("2")
    assert history.summary_document(mine, "3") is None  # the previous run's, left over
    assert history.summary_document({"data": {}}, "2") is None
    assert history.summary_document(None, "2") is None
    assert history.summary_document({"data": {history.SUMMARY_KEY: "{"}}, "2") is None


def test_previous_is_the_newest_good_run_and_run_id_names_one() -> None:
    items = [
        kept("1", 1),
        kept("2", 2, verdict=None),  # no thresholds: good
        kept("3", 3, verdict="Failed"),  # a regression is no baseline
        kept("4", 4, phase="Aborted", verdict="Failed"),
        kept("5", 5, phase="Failed", verdict=None),
    ]
    chosen = history.baseline_item(items, Baseline())
    assert chosen is not None
    assert chosen["metadata"]["name"] == "web-run-2"
    named = history.baseline_item(items, Baseline("3"))
    assert named is not None
    assert named["metadata"]["name"] == "web-run-3"
    assert history.baseline_item(items, Baseline("9")) is None
    assert history.baseline_item(items[2:], Baseline()) is None  # none good: the first run
    unkept = history.manifest(
        "web", "6", "t", 6, history.row("6", "t", "Succeeded", None, None), None
    )
    assert history.baseline_item([unkept], Baseline()) is None  # no JSON report to compare with
    assert history.baseline_item([unkept], Baseline("6")) is None


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"history": {"limit": 101}}, "spec.history.limit: 101 is not allowed; use a whole number "
                                      "from 0 to 100"),
        ({"history": {"limit": -1}}, "spec.history.limit: -1 is not allowed"),
        ({"history": {"limit": "5"}}, "spec.history.limit: '5' is not allowed; use a whole number"),
        ({"baseline": "previous"}, "spec.baseline: 'previous' is not allowed; use an object"),
        ({"baseline": {}}, "spec.baseline: {} is not allowed; use {previous: true}"),
        ({"baseline": {"previous": False}}, "spec.baseline: {'previous': False} is not allowed"),
        ({"baseline": {"previous": True, "runId": "3"}}, "spec.baseline: {'previous': True, "),
        ({"baseline": {"runId": 2.5}}, "spec.baseline.runId: 2.5 is not allowed"),
        ({"thresholds": [REGRESSION]}, "spec.thresholds[0].baseline: '+10%' is not allowed; set "
                                       "spec.baseline too"),
        ({"baseline": {"previous": True}, "thresholds": [{**REGRESSION, "baseline": "10%"}]},
         "spec.thresholds[0].baseline: '10%' is not allowed; use +N% or -N%"),
        ({"baseline": {"previous": True}, "thresholds": [{**REGRESSION, "value": 3}]},
         "spec.thresholds[0]: {'metric': 'p95', 'op': '<', 'baseline': '+10%', 'value': 3} is "
         "not allowed; give value or baseline, not both"),
        ({"baseline": {"previous": True}, "thresholds": [{**REGRESSION, "metric": "loopLag"}]},
         "spec.thresholds[0].metric: 'loopLag' is not allowed; loopLag has no baseline value"),
    ],
)  # fmt: skip
def test_bad_history_and_baseline_fields_are_refused_naming_them(
    changes: dict[str, Any], words: str
) -> None:
    with pytest.raises(SpecError) as refused:
        parse_spec(spec(**changes))
    assert words in str(refused.value)


def test_the_manager_compares_with_the_baseline_runs_report_mounted_from_its_config_map() -> None:
    parsed = parse_spec(spec(baseline={"previous": True}, thresholds=[
        REGRESSION, {"metric": "failRatio", "op": "<", "value": 0.01}]))  # fmt: skip
    pod = manager_pod("web", "team-a", parsed, "2", "0123456789ab", baseline="web-run-1")
    (container,) = pod["spec"]["containers"]
    gaggle = container["args"][container["args"].index("--") + 2 :]
    values, _ = parse_run_args(gaggle[1:], gaggle_flags=True)
    assert values["baseline"] == "/gaggle/baseline/report.json"
    assert values["thresholds"] == ["p95 < baseline + 10%", "failRatio < 0.01"]
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "baseline")
    items = [{"key": "report.json", "path": "report.json"}]
    assert volume["configMap"] == {"name": "web-run-1", "items": items}
    assert {"name": "baseline", "mountPath": "/gaggle/baseline", "readOnly": True} in container[
        "volumeMounts"]  # fmt: skip
    # no baseline run yet: the regression rule goes to the manager as unjudged, not to gaggle
    first = manager_pod("web", "team-a", parsed, "1", "0123456789ab",
                        unjudged=("p95 < baseline + 10%",))  # fmt: skip
    args = first["spec"]["containers"][0]["args"]
    assert args[args.index("--unjudged") + 1] == "p95 < baseline + 10%"
    values, _ = parse_run_args(args[args.index("--") + 3 :], gaggle_flags=True)
    assert (values["thresholds"], values.get("baseline")) == (["failRatio < 0.01"], None)
    assert all(v["name"] != "baseline" for v in first["spec"]["volumes"])


def compared_change(base: float, current: float, significant: bool) -> dict[str, Any]:
    """One value of the engine's comparison (README's ``C``)."""
    relative = (current - base) / base if base else None
    return {"baseline": base, "current": current, "change": current - base,
            "relative": relative, "significant": significant}  # fmt: skip


def six(count: float, p95: float) -> dict[str, Any]:
    """The six compared values of a row: ``count`` and ``p95`` changed, the rest the same."""
    return {
        "count": compared_change(100, count, False),
        "rps": compared_change(50, 50, False),
        "fail_percent": compared_change(0, 0, False),
        "p50_ms": compared_change(5, 5, False),
        "p95_ms": compared_change(10, p95, p95 > 11),
        "p99_ms": compared_change(20, 20, False),
    }


def test_status_comparison_is_the_reports_baseline_key_bounded() -> None:
    requests = [{"method": "GET", "name": f"/{i}", "changes": six(i, 10)} for i in range(15)]
    compared = {"file": "/gaggle/baseline/report.json", "started": None, "version": "1",
                "same_test": True, "notes": [f"note {i}" for i in range(7)],
                "aggregate": six(100, 15.25), "requests": requests,
                "only_here": ["GET /new"], "only_in_baseline": []}  # fmt: skip
    said = status_comparison(compared)
    assert said["p95Change"] == "+52.5%"
    assert said["aggregate"]["p95Ms"] == compared_change(10, 15.25, True)
    assert set(said["aggregate"]) == {"count", "rps", "failPercent", "p50Ms", "p95Ms", "p99Ms"}
    assert [r["name"] for r in said["requests"]] == [f"GET /{i}" for i in range(14, 4, -1)]
    assert (said["otherRequests"], said["onlyHere"], said["onlyInBaseline"]) == (5, 1, 0)
    assert said["notes"] == [f"note {i}" for i in range(5)] + ["… and 2 more"]
    assert said["sameTest"] is True
    assert change_text(compared_change(0, 3, True)) == "n/a"  # from nothing: no relative change
    assert change_text(compared_change(10, 9, False)) == "-10.0%"
    assert comparison.TOP_REQUESTS == status.TOP_REQUESTS  # as many rows as status.summary


def test_history_and_baseline_are_read() -> None:
    assert (parse_spec(spec()).history_limit, parse_spec(spec()).baseline) == (10, None)
    parsed = parse_spec(spec(history={"limit": 0}, baseline={"previous": True}))
    assert (parsed.history_limit, parsed.baseline) == (0, Baseline(None))
    assert parse_spec(spec(baseline={"runId": 7})).baseline == Baseline("7")


# --- on the real control plane (tests/cluster) ---


@pytest.fixture
def crd(kubectl: Kubectl) -> Kubectl:
    """The CRD applied (no operator: these tests call history.py themselves, or only ask the
    API server)."""
    kubectl("apply", "-f", str(CRD))
    kubectl("wait", "--for", "condition=established", "crd/loadtests.gaggle.dev", "--timeout=20s")
    return kubectl


@pytest.fixture
def api(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """gaggle_operator.kube's client on the test cluster (cluster-admin, as `kopf run` on the
    host has it)."""
    monkeypatch.setattr(kube, "_api", config.new_client_from_config(str(cluster.kubeconfig)))


def ended(kubectl: Kubectl, run: str, second: int, requests: int) -> dict[str, Any]:
    """The LoadTest as the operator sees it when run ``run`` ends: its status names the run
    and its start (as launch wrote them), its summary ConfigMap holds the manager's JSON and
    report (as manage.py writes them)."""
    status = {"status": {"runId": run, "startTime": f"2030-01-01T00:00:{second:02d}Z"}}
    kubectl("patch", "loadtest", "web", "--subresource=status", "--type=merge",
            "-p", json.dumps(status))  # fmt: skip
    report = base64.b64encode(f"run {run}".encode()).decode()
    summary = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-summary"},
               "data": {history.SUMMARY_KEY: json.dumps(document(run, requests))},
               "binaryData": {"report.html.gz": report}}  # fmt: skip
    kubectl.apply(json.dumps(summary))
    body: dict[str, Any] = kubectl.json("get", "loadtest", "web")
    return body


def history_maps(kubectl: Kubectl) -> dict[str, Any]:
    found = kubectl.json("get", "cm", "-l", "gaggle.dev/loadtest=web,gaggle.dev/role=history")
    return {item["metadata"]["name"]: item for item in found["items"]}


def test_a_run_is_kept_once_however_often_its_end_is_seen_and_the_oldest_go(
    crd: Kubectl, api: None
) -> None:
    """history.record against the real API server: each run's ConfigMap made once (the timer
    firing twice, or an operator restarted between the copy and the status patch, records
    nothing new and writes the same rows), limit 2 prunes the oldest, a runId used again takes
    its earlier run's place, and the LoadTest's deletion takes its history with it."""
    kubectl = crd
    kubectl.apply(loadtest("web", "http://127.0.0.1:9", history={"limit": 2}))
    for second, run in enumerate(("1", "2", "3"), start=1):
        body = ended(kubectl, run, second, requests=100 * second)
        rows = history.record(body, "Succeeded", None, 2)
        assert history.record(body, "Succeeded", None, 2) == rows  # seen again: the same
    kept = history_maps(kubectl)
    assert sorted(kept) == ["web-run-2", "web-run-3"]  # run 1, the oldest, pruned
    assert [(r["runId"], r["requests"], r["configMap"]) for r in rows] == [
        ("3", 300, "web-run-3"), ("2", 200, "web-run-2")]  # fmt: skip
    three = kept["web-run-3"]
    assert json.loads(three["data"][history.SUMMARY_KEY]) == document("3", 300)
    assert base64.b64decode(three["binaryData"]["report.html.gz"]) == b"run 3"
    (owner,) = three["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"]) == ("LoadTest", body["metadata"]["uid"])
    assert three["metadata"]["annotations"][history.RUN_ID] == "3"
    # runId 2 again, a new run: it replaces its earlier one, now the newest
    rows = history.record(ended(kubectl, "2", 9, requests=900), "Failed", "ManagerLost", 2)
    assert [(r["runId"], r["requests"]) for r in rows] == [("2", 900), ("3", 300)]
    assert rows[0]["phase"] == "Failed"
    assert rows[0]["reason"] == "ManagerLost"
    assert sorted(history_maps(kubectl)) == ["web-run-2", "web-run-3"]
    # a summary its manager wrote for another run is not this run's: not copied
    body = ended(kubectl, "4", 10, requests=1)
    kubectl("patch", "loadtest", "web", "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": {"runId": "5"}}))  # fmt: skip
    rows = history.record(kubectl.json("get", "loadtest", "web"), "Failed", "ManagerLost", 2)
    assert rows[0]["runId"] == "5"
    assert "requests" not in rows[0]
    assert history.SUMMARY_KEY not in history_maps(kubectl)["web-run-5"]["data"]
    assert history.record(body, "Succeeded", None, 0) == []  # limit 0: none kept
    assert history_maps(kubectl) == {}
    history.record(ended(kubectl, "6", 11, requests=6), "Succeeded", None, 2)
    # a ConfigMap of the name that is not the LoadTest's: left alone (the operator says so)
    kubectl("create", "configmap", "web-run-7")
    with pytest.raises(kube.Occupied):
        history.record(ended(kubectl, "7", 12, requests=7), "Succeeded", None, 2)
    assert "ownerReferences" not in kubectl.json("get", "cm", "web-run-7")["metadata"]
    kubectl("delete", "loadtest", "web", "--timeout=30s")
    deadline = time.monotonic() + 30  # the garbage collector follows the ownerReference
    while history_maps(kubectl):
        assert time.monotonic() < deadline, history_maps(kubectl)
        time.sleep(0.3)
    assert kubectl.json("get", "cm", "web-run-7")  # the stranger's stays


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"history": {"limit": 101}}, "spec.history.limit: use a whole number from 0 to 100"),
        ({"history": {"limit": -1}}, "spec.history.limit: use a whole number from 0 to 100"),
        ({"baseline": "previous"}, 'spec.baseline: Invalid value: "string": spec.baseline in '
                                   "body must be of type object"),
        ({"baseline": {}}, "spec.baseline: give {previous: true} or {runId: <a run of the "
                           "history>}, one of them"),
        ({"baseline": {"previous": False}}, "spec.baseline: give {previous: true}"),
        ({"baseline": {"previous": True, "runId": 3}}, "spec.baseline: give {previous: true}"),
        ({"baseline": {"runId": "no/slash"}}, "spec.baseline.runId: use a number, or at most "
                                              "63 letters"),
        ({"baseline": {"previous": True}, "thresholds": [{**REGRESSION, "baseline": "10%"}]},
         "spec.thresholds[0].baseline in body should match '^(0|[+-][0-9]+([.][0-9]+)?%?)$'"),
        ({"baseline": {"previous": True}, "thresholds": [{"metric": "p95", "op": "<"}]},
         "spec.thresholds[]: give value (a number) or baseline (an offset from the baseline "
         "run's value, e.g. +10%), one of them"),
    ],
)  # fmt: skip
def test_the_api_server_refuses_bad_history_and_baseline_fields_naming_them(
    crd: Kubectl, changes: dict[str, Any], words: str
) -> None:
    refused = crd("apply", "-f", "-", input=loadtest("bad", "http://h", **changes), check=False)
    assert refused.returncode != 0
    assert words in refused.stderr, refused.stderr
    accepted = {"history": {"limit": 0}, "baseline": {"runId": "nightly-7"}}
    assert crd.apply(loadtest("good", "http://h", **accepted)).returncode == 0


SLOWED = """
from gaggle import TaskSet, task, constant

class Page(TaskSet):
    wait_time = constant(0.01)

    @task
    async def page(self) -> None:
        await self.get("/slow?ms=DELAY", name="/slow")  # the target sleeps DELAY ms
"""


def slowed(ms: int) -> dict[str, str]:
    """The test against the target's /slow endpoint, answered after ``ms`` milliseconds: the
    same request (one name), made slower."""
    return {"inline": SLOWED.replace("DELAY", str(ms))}


def wait_for_run(kubectl: Kubectl, run: str, operator: Operator) -> dict[str, Any]:
    """Until the LoadTest ``web``'s run ``run`` has ended (its status names it, in a final
    phase)."""
    deadline = time.monotonic() + 120
    while True:
        status: dict[str, Any] = kubectl.json("get", "loadtest", "web").get("status", {})
        if status.get("runId") == run and status.get("phase") in FINAL:
            return status
        assert time.monotonic() < deadline, f"{status}\n{story(kubectl, operator)}"
        time.sleep(0.5)


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in status["conditions"] if c["type"] == kind)
    return found


def test_a_run_against_a_slowed_target_fails_its_regression_rule_against_the_previous_run(
    cluster: Cluster, kubectl: Kubectl, operator: Operator, bridge_target: tuple[Target, str]
) -> None:
    """The done-means case in a LoadTest, with its history: run 1 against the fast target (no
    baseline yet: its regression rule unjudged), the operator restarted, run 2 against the same
    endpoint slowed → Succeeded with verdict Failed, the p95 change significant in
    status.comparison, the rule named in ThresholdsPassed; both runs in the history with the
    target's exact counts. Then run 3 compared by its runId with run 2 (a run ``previous`` skips:
    its verdict Failed), on the fast target — far under the slowed p95, whatever the noise
    between two fast runs — at limit 1 (runs 1 and 2 pruned), and run 4 naming a run the
    history lacks fails."""
    target, url = bridge_target
    rules = [REGRESSION, {"metric": "failRatio", "op": "<", "value": 0.01}]
    load = {"users": 8, "runTime": "3s", "thresholds": rules, "baseline": {"previous": True}}
    kubectl.apply(loadtest("web", url, script=slowed(0), runId="1", **load))
    first = wait_for_run(kubectl, "1", operator)
    assert first["phase"] == "Succeeded", f"{first}\n{story(kubectl, operator)}"
    first_served = target.counts()["GET /slow 200"]
    assert first["summary"]["requests"] == first_served
    assert first["verdict"] == "Passed"
    unjudged = next(r for r in first["thresholds"] if r["expression"] == "p95 < baseline + 10%")
    assert unjudged["passed"] is True  # no baseline: not judged
    assert "limit" not in unjudged  # null: no limit (a merge patch leaves nulls out)
    assert unjudged["observed"] > 0
    assert condition(first, "BaselineFound")["reason"] == "NoBaselineYet"
    assert "comparison" not in first
    operator.restart()  # between the runs: the history is in ConfigMaps, not in the operator
    kubectl.apply(loadtest("web", url, script=slowed(100), runId="2", **load))
    second = wait_for_run(kubectl, "2", operator)
    assert second["phase"] == "Succeeded", f"{second}\n{story(kubectl, operator)}"
    assert second["verdict"] == "Failed"
    assert second["baseline"] == {"runId": "1", "configMap": "web-run-1"}
    rule = next(r for r in second["thresholds"] if r["expression"] == "p95 < baseline + 10%")
    assert rule["passed"] is False
    p95 = second["comparison"]["aggregate"]["p95Ms"]
    assert rule["baseline"] == p95["baseline"]  # both read from run 1's JSON report
    assert rule["limit"] == pytest.approx(1.1 * p95["baseline"])
    assert rule["observed"] >= 100 > rule["limit"]  # each request waited 100 ms now
    assert p95["significant"] is True
    assert p95["relative"] > 0.1
    assert second["comparison"]["p95Change"] == f"{100 * p95['relative']:+.1f}%"
    (slow,) = second["comparison"]["requests"]
    assert slow["name"] == "GET /slow"
    assert slow["count"]["baseline"] == first_served
    passed = condition(second, "ThresholdsPassed")
    assert (passed["status"], passed["message"]) == ("False", "failed: p95 < baseline + 10%")
    second_served = target.counts()["GET /slow 200"] - first_served
    assert second["summary"]["requests"] == second_served
    # the history: both runs, newest first, the target's counts, their ConfigMaps
    rows = [(r["runId"], r["phase"], r["verdict"], r["requests"]) for r in second["history"]]
    assert rows == [("2", "Succeeded", "Failed", second_served),
                    ("1", "Succeeded", "Passed", first_served)]  # fmt: skip
    assert second["history"][0]["p95Change"] == second["comparison"]["p95Change"]
    assert second["history"][0]["baselineRunId"] == "1"
    kept = history_maps(kubectl)
    assert sorted(kept) == ["web-run-1", "web-run-2"]
    report = json.loads(kept["web-run-2"]["data"][REPORT_KEY])
    assert report["schema"] == "gaggle-report/1"
    assert report["requests_total"]["count"] == second_served
    assert json.loads(kept["web-run-1"]["data"]["summary.json"])["summary"]["requests"] == (
        first_served)  # fmt: skip
    # the columns, and our own short name and category (kangal's CRD also says lt)
    table = kubectl("get", "glt", "web").stdout
    assert "P95Δ" in table.splitlines()[0]
    assert second["comparison"]["p95Change"] in table
    assert "loadtest.gaggle.dev/web" in kubectl("get", "gaggle", "-o", "name").stdout
    # run 3 against run 2 by its runId, on the fast target again: passes; limit 1 prunes
    named = {**load, "baseline": {"runId": "2"}, "history": {"limit": 1}}
    kubectl.apply(loadtest("web", url, script=slowed(0), runId="3", **named))
    third = wait_for_run(kubectl, "3", operator)
    assert third["phase"] == "Succeeded", f"{third}\n{story(kubectl, operator)}"
    assert third["baseline"] == {"runId": "2", "configMap": "web-run-2"}
    assert third["verdict"] == "Passed", third["thresholds"]
    faster = third["comparison"]["aggregate"]["p95Ms"]
    assert faster["relative"] < -0.5
    assert faster["significant"] is True
    assert [r["runId"] for r in third["history"]] == ["3"]
    assert sorted(history_maps(kubectl)) == ["web-run-3"]
    # a runId the history does not have: the run fails, naming the field, and starts nothing
    missing = {**named, "baseline": {"runId": "9"}}
    kubectl.apply(loadtest("web", url, script=slowed(0), runId="4", **missing))
    fourth = wait_for_run(kubectl, "4", operator)
    assert (fourth["phase"], fourth["reason"]) == ("Failed", "BaselineNotFound")
    words = "spec.baseline.runId: '9' is not a run of the history with a JSON report (runs kept: 3)"
    assert fourth["message"] == words
    assert condition(fourth, "BaselineFound")["status"] == "False"
    assert [p["metadata"]["name"] for p in kubectl.json("get", "pods")["items"]
            if p["metadata"]["labels"].get("gaggle.dev/run") == "4"] == []  # fmt: skip
    deadline = time.monotonic() + 30  # kopf posts Events from a queue of its own
    while not any(
        (e["reason"], e["type"]) == ("BaselineNotFound", "Warning")
        for e in kubectl.json("get", "events", "--field-selector", "involvedObject.name=web")[
            "items"
        ]
    ):
        assert time.monotonic() < deadline, story(kubectl, operator)
        time.sleep(0.3)
