"""A LoadTest run compared with its baseline (``spec.baseline``): what the manager keeps for a later
run to compare with, and what it says of the comparison in ``status.comparison``.

- What is kept: the run's JSON report (``gaggle-report/1``, what ``gaggle run --baseline`` reads),
  without its timeline — a baseline reads the requests and their aggregate, and the per-second
  series would crowd a ConfigMap — as ``report.json`` of the summary ConfigMap, which the history
  copies. The operator mounts the baseline run's at ``BASELINE_FILE`` and passes ``--baseline``.
- ``status.comparison``: the report's ``baseline`` key (report/comparison.py decides what is
  significant), bounded as the rest of the status is: the aggregate, the busiest requests, the
  first notes; and ``p95Change``, the aggregate p95's relative change as text for `kubectl get`.
- No baseline run yet (the first run with ``previous``): the regression rules cannot be judged;
  the manager runs without them (the engine refuses one without ``--baseline``) and reports them
  passed and unjudged — ``limit`` null, as the engine does for a request its baseline lacks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gaggle.metrics import Threshold, Verdict, evaluate, parse_threshold
from gaggle.run import RunResult

BASELINE_DIR = "/gaggle/baseline"
REPORT_KEY = "report.json"  # the run's JSON report in its summary (and history) ConfigMap
BASELINE_FILE = f"{BASELINE_DIR}/{REPORT_KEY}"
TOP_REQUESTS = 10  # status.comparison.requests: the busiest, as many as status.summary shows
NOTES_KEPT = 5
FIELDS = {"count": "count", "rps": "rps", "fail_percent": "failPercent", "p50_ms": "p50Ms",
          "p95_ms": "p95Ms", "p99_ms": "p99Ms"}  # fmt: skip


def is_regression_rule(rule: str) -> bool:
    """A rule whose limit is its baseline's value (``p95 < baseline + 10%``)."""
    return parse_threshold(rule).baseline_based


def read_report(path: str) -> dict[str, Any] | None:
    """The JSON report at ``path`` without its timeline; None when there is none."""
    try:
        report = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(report, dict):
        return None
    report.pop("timeline", None)
    return report


def _changes(compared: dict[str, Any]) -> dict[str, Any]:
    return {ours: compared[theirs] for theirs, ours in FIELDS.items() if theirs in compared}


def change_text(change: dict[str, Any] | None) -> str:
    """``+12.5%`` (a relative change), ``n/a`` when the baseline's value was 0 or missing."""
    relative = (change or {}).get("relative")
    return "n/a" if relative is None else f"{100 * relative:+.1f}%"


def status_comparison(compared: dict[str, Any]) -> dict[str, Any]:
    """``status.comparison`` from the report's ``baseline`` key: the aggregate, the busiest
    requests (by this run's count), the first notes, and how many requests were in one run
    only. Each value is ``{baseline, current, change, relative, significant}``."""
    aggregate = _changes(compared.get("aggregate", {}))
    rows = compared.get("requests", [])
    busiest = sorted(rows, key=lambda row: -row["changes"]["count"]["current"])[:TOP_REQUESTS]
    notes = list(compared.get("notes", []))
    more = [f"… and {len(notes) - NOTES_KEPT} more"] if len(notes) > NOTES_KEPT else []
    return {
        "sameTest": compared.get("same_test"),
        "p95Change": change_text(aggregate.get("p95Ms")),
        "aggregate": aggregate,
        "requests": [
            {"name": f"{row['method']} {row['name']}", **_changes(row["changes"])}
            for row in busiest
        ],
        "otherRequests": len(rows) - len(busiest),
        "onlyHere": len(compared.get("only_here", [])),
        "onlyInBaseline": len(compared.get("only_in_baseline", [])),
        "notes": notes[:NOTES_KEPT] + more,
    }


def unjudged(rules: list[str], result: RunResult) -> list[Verdict]:
    """The regression rules of a run with no baseline: passed, their limit None (the engine's
    "no baseline value"), their observed value said; failed only when their request was never
    made, as any rule's."""
    parsed: list[Threshold] = [parse_threshold(rule) for rule in rules]
    return evaluate(parsed, result.metrics, result.duration)
