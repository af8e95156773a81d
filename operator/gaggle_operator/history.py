"""A LoadTest's run history: each run that started keeps what its manager wrote (the JSON summary
and, when it fit, the gzipped HTML report) in a ConfigMap of its own, ``<name>-run-<runId>``,
owned by the LoadTest (deleted with it) and labelled with its name, the role ``history`` and the
run (``kubectl get cm -l gaggle.dev/loadtest=web,gaggle.dev/role=history``). The newest
``spec.history.limit`` (default 10) are kept; ``status.history`` lists them, newest first.

Why derived from the ConfigMaps and not from the status: a run is recorded by creating its
ConfigMap if it is absent, and the status is computed from the ConfigMaps that exist, so a second
look at the same run (the timer firing twice, an operator restarted between the copy and the
status patch) creates nothing and writes the same rows. The order is a sequence number one past
the newest's, kept in an annotation; a runId used again replaces its earlier run's ConfigMap: one
entry per runId, so that ``spec.baseline.runId`` names one run.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import kopf

from gaggle_operator import kube
from gaggle_operator.children import labels, names
from gaggle_operator.comparison import REPORT_KEY, is_regression_rule
from gaggle_operator.conditions import now
from gaggle_operator.spec import Baseline, LoadTestSpec

ROLE = "history"
SUMMARY_KEY = "summary.json"  # the manager's JSON summary, as its summary ConfigMap holds it
RUN_KEY = "run.json"  # the run's status.history row
RUN_ID = "gaggle.dev/run-id"  # annotations: the raw runId (the name may have had to change it)
START = "gaggle.dev/start-time"  # the run's status.startTime: which run of that runId it is
SEQUENCE = "gaggle.dev/sequence"  # the order of the runs: one past the newest's
HASHED = 10  # hex digits of a runId's hash in a name that had to change it
Manifest = dict[str, Any]


def config_map_name(loadtest: str, run_id: str) -> str:
    """``<name>-run-<runId>``, a valid ConfigMap name (lowercase letters, digits and '-'). A
    runId it would change (capitals, '_', '.') gets a hash of itself appended, so that the name
    is stable and two runIds do not share one. At most 55 + 5 + 63 + 11 characters (≤ 253)."""
    clean = re.sub(r"[^a-z0-9-]", "-", run_id.lower()).strip("-")
    if clean != run_id:
        digest = hashlib.sha256(run_id.encode()).hexdigest()[:HASHED]
        clean = f"{clean}-{digest}" if clean else digest
    return f"{loadtest}-run-{clean}"


def selector(loadtest: str) -> str:
    return f"gaggle.dev/loadtest={loadtest},gaggle.dev/role={ROLE}"


def sequence(item: Manifest) -> int:
    try:
        return int((item["metadata"].get("annotations") or {}).get(SEQUENCE, 0))
    except ValueError:
        return 0


def newest_first(items: list[Manifest]) -> list[Manifest]:
    return sorted(items, key=lambda item: (-sequence(item), item["metadata"]["name"]))


def split(items: list[Manifest], limit: int) -> tuple[list[Manifest], list[Manifest]]:
    """(kept, pruned): the newest ``limit`` runs, and the older ones."""
    ordered = newest_first(items)
    return ordered[:limit], ordered[limit:]


def run_row(item: Manifest) -> dict[str, Any]:
    """A history ConfigMap's status.history row."""
    try:
        row: dict[str, Any] = json.loads((item.get("data") or {}).get(RUN_KEY, "{}"))
    except ValueError:
        row = {}
    annotations = item["metadata"].get("annotations") or {}
    return {"runId": annotations.get(RUN_ID, ""), **row, "configMap": item["metadata"]["name"]}


def row(
    run_id: str,
    start: str,
    phase: str,
    reason: str | None,
    document: dict[str, Any] | None,
) -> dict[str, Any]:
    """What status.history says of a run: when, how it ended, and the summary's figures when
    its manager wrote them (a run that failed before may have none)."""
    made: dict[str, Any] = {"runId": run_id, "startTime": start, "endTime": now(), "phase": phase}
    if reason:
        made["reason"] = reason
    document = document or {}
    if document.get("verdict"):
        made["verdict"] = document["verdict"]
    summary = document.get("summary")
    if isinstance(summary, dict) and "requests" in summary:
        made |= {
            "durationSeconds": summary.get("durationSeconds"),
            "requests": summary["requests"],
            "rps": summary.get("rps"),
            "failPercent": round(100 * float(summary.get("failRatio", 0.0)), 2),
            "p95Ms": (summary.get("latencyMs") or {}).get("p95"),
        }
    comparison = document.get("comparison")
    if isinstance(comparison, dict) and "p95Change" in comparison:
        made["p95Change"] = comparison["p95Change"]  # against status.baseline's run
    return made


def manifest(
    loadtest: str,
    run_id: str,
    start: str,
    number: int,
    made: dict[str, Any],
    copied: Manifest | None,
) -> Manifest:
    """The run's ConfigMap: its row, and the summary ConfigMap's content when it is this run's
    (``copied``; the same size limits held it, the row adds a few hundred bytes)."""
    data = {RUN_KEY: json.dumps(made, separators=(",", ":"))}
    binary: dict[str, str] = {}
    if copied is not None:
        data |= dict(copied.get("data") or {})
        binary = dict(copied.get("binaryData") or {})
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": config_map_name(loadtest, run_id),
            "labels": labels(loadtest, ROLE, run_id),
            "annotations": {RUN_ID: run_id, START: start, SEQUENCE: str(number)},
        },
        "data": data,
        "binaryData": binary,
    }


def summary_document(summary: Manifest | None, run_id: str) -> dict[str, Any] | None:
    """The summary ConfigMap's JSON when its manager wrote it for this run (a rerun's manager
    writes over its predecessor's; one that never wrote leaves the previous run's)."""
    text = ((summary or {}).get("data") or {}).get(SUMMARY_KEY)
    if not text:
        return None
    try:
        document = json.loads(text)
    except ValueError:
        return None
    if not isinstance(document, dict) or str(document.get("runId")) != run_id:
        return None
    return document


def record(
    body: Mapping[str, Any], phase: str, reason: str | None, limit: int
) -> list[dict[str, Any]]:
    """Keep the run that just ended (``status.runId`` started at ``status.startTime``) in its
    ConfigMap, prune the oldest past ``limit``, and return status.history. Idempotent."""
    metadata, status = body["metadata"], body.get("status", {})
    namespace, loadtest = metadata["namespace"], metadata["name"]
    run_id, start = str(status.get("runId") or ""), str(status.get("startTime") or "")
    items = listed(body)
    if limit > 0 and run_id and start:
        name = config_map_name(loadtest, run_id)
        same = [item for item in items if item["metadata"]["name"] == name]
        if not same or (same[0]["metadata"].get("annotations") or {}).get(START) != start:
            if same:  # an earlier run of this runId: the new one takes its place
                kube.delete("ConfigMap", name, namespace)
                items.remove(same[0])
            copied = kube.config_map(namespace, names(loadtest)["summary"])
            document = summary_document(copied, run_id)
            number = max(map(sequence, items), default=0) + 1
            made = row(run_id, start, phase, reason, document)
            if isinstance(status.get("baseline"), dict):
                made["baselineRunId"] = status["baseline"].get("runId")
            kept = manifest(loadtest, run_id, start, number, made, copied if document else None)
            kopf.adopt(kept, owner=cast(kopf.Body, body))  # a Mapping is all it reads
            if kube.create(kept, namespace):
                items.append(kept)
            else:  # made meanwhile: a second look at the same run
                items = listed(body)
    kept_items, pruned = split(items, limit)
    for item in pruned:
        kube.delete("ConfigMap", item["metadata"]["name"], namespace)
    return [run_row(item) for item in kept_items]


def comparable(item: Manifest) -> bool:
    """The run kept its JSON report, which ``--baseline`` reads (comparison.py)."""
    return REPORT_KEY in (item.get("data") or {})


def good(item: Manifest) -> bool:
    """A run fit to be ``previous``: it succeeded (not Aborted, not Failed) and its verdict is
    not Failed (Passed, or none without thresholds) — the last good run, so that a regression
    never becomes the next run's baseline — and its JSON report was kept."""
    made = run_row(item)
    return made.get("phase") == "Succeeded" and made.get("verdict") != "Failed" and comparable(item)


def baseline_item(items: list[Manifest], baseline: Baseline) -> Manifest | None:
    """The history ConfigMap ``spec.baseline`` chooses, if the history has it (with a JSON
    report to compare with)."""
    if baseline.run_id is not None:
        named = [i for i in items if run_row(i)["runId"] == baseline.run_id and comparable(i)]
        return named[0] if named else None
    return next((item for item in newest_first(items) if good(item)), None)


def listed(body: Mapping[str, Any]) -> list[Manifest]:
    """The LoadTest's history ConfigMaps (by label, then by owner: an earlier LoadTest of the
    same name may have left some for the garbage collector)."""
    metadata = body["metadata"]
    found = kube.config_maps(metadata["namespace"], selector(metadata["name"]))
    return [item for item in found if kube.owned_by(item, metadata["uid"])]


class BaselineMissing(Exception):
    """``spec.baseline.runId`` names a run the history does not have (with a JSON report)."""


@dataclass(frozen=True, slots=True)
class Compared:
    """What a run is compared with: the BaselineFound condition, and what the manager gets."""

    config_map: str | None  # the baseline run's history ConfigMap; None: no run to compare with
    run_id: str | None
    unjudged: tuple[str, ...]  # regression rules that cannot be judged (no baseline run yet)
    message: str

    @property
    def found(self) -> bool:
        return self.config_map is not None


def compare_with(body: Mapping[str, Any], spec: LoadTestSpec) -> Compared | None:
    """The run ``spec.baseline`` chooses from the history; None without spec.baseline. Raises
    BaselineMissing when it names a run the history lacks: that run fails, as a missing script
    ConfigMap does; ``previous`` with no good run yet runs without (its first run)."""
    if spec.baseline is None:
        return None
    items = listed(body)
    found = baseline_item(items, spec.baseline)
    if found is not None:
        run_id = run_row(found)["runId"]
        name = found["metadata"]["name"]
        return Compared(name, run_id, (), f"compared with run {run_id} (ConfigMap {name})")
    if spec.baseline.run_id is not None:
        kept = [run_row(i)["runId"] for i in newest_first(items) if comparable(i)]
        shown = ", ".join(kept[:10]) or "none"
        raise BaselineMissing(
            f"spec.baseline.runId: {spec.baseline.run_id!r} is not a run of the history with a "
            f"JSON report (runs kept: {shown})"
        )
    rules = tuple(rule for rule in spec.thresholds if is_regression_rule(rule))
    unjudged = f"; its regression rules are not judged: {'; '.join(rules)}" if rules else ""
    message = (
        "no run to compare with yet (spec.baseline.previous: the newest run that succeeded "
        f"with a verdict other than Failed){unjudged}"
    )
    return Compared(None, None, rules, message)
