"""The report's one data model: a plain dict that is the JSON report and feeds the HTML report.

Both formats come from ``build_report``, so they cannot disagree. Its request rows are the one
part made as it is read (``RequestRows``): 100,000 names made 100,000 dicts, 135 MiB held at
once on a manager only to be written out; ``write_json`` writes them one at a time, and
``plain`` is ``json.dumps``' ``default`` for the rest of the readers (the live page, HTML).

The tables cover what the console summary covers (the measured phase, after the reset); the
timeline covers the whole run.
Times are milliseconds, rates per second, instants ISO 8601 in UTC. README documents the schema;
``SCHEMA`` changes when a field changes meaning or goes away.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, overload

from gaggle.metrics import (
    Metrics,
    RequestKey,
    Stats,
    TaskNames,
    Verdict,
    ms,
    overall,
    request_order,
    task_label,
    verdict_rows,
)
from gaggle.report.baseline import Baseline
from gaggle.report.comparison import compare
from gaggle.report.timeline import FIELDS, RUN_ONLY, Series, Timeline

SCHEMA = "gaggle-report/1"
PERCENTILES = {"p50_ms": 0.5, "p90_ms": 0.9, "p95_ms": 0.95, "p99_ms": 0.99, "p99_9_ms": 0.999}
MAX_ERRORS = 100  # distinct errors listed; the rest are counted (locust#1712: 1.2 GB reports)
MAX_ERROR_CHARS = 1000


@dataclass(frozen=True, slots=True)
class RunFacts:
    """What the report says about the run itself, beside its metrics."""

    command: str
    hosts: Sequence[str]
    users: int
    hatch_rate: float
    run_time: float  # as configured; 0: until stopped
    reset_metrics: bool
    started: float  # epoch seconds
    ended: float
    duration: float  # seconds the tables cover
    stopped_by: str
    workers: int  # 0 for a standalone run
    workers_lost: int
    version: str
    test_plan: str | None = None  # canonical (seconds); None: -u at -r, or a load shape
    iterations: int = 0  # per user; 0: until the run stops
    arrival_rate: float = 0.0  # --arrival-rate; 0: none (a closed model, or a rate plan)
    latency: str = ""  # which latency the response times are (the summary's line)
    warnings: tuple[str, ...] = ()  # e.g. coordinated omission likely
    loop_lag: float = 0.0  # seconds: the event loop's worst lag (a gaggle: any process's)
    test: tuple[str, str] | None = None  # the test file's (name, sha256); None: not a file


def test_file_of(tasksets: Sequence[type]) -> tuple[str, str] | None:
    """The test file's name (no folders: a report is shared) and sha256, so that a later run
    can tell whether its baseline ran the same test; None when the task sets are in no file."""
    module = sys.modules.get(tasksets[0].__module__) if tasksets else None
    path = getattr(module, "__file__", None)
    if not path:
        return None
    try:
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None
    return Path(path).name, digest


def instant(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 3) if seconds > 0 else 0.0


def stats_row(stats: Stats, seconds: float) -> dict[str, Any]:
    return {
        "count": stats.count,
        "fails": stats.fail_count,
        "rps": _rate(stats.count, seconds),
        "fail_rps": _rate(stats.fail_count, seconds),
        "avg_ms": ms(stats.mean_us),
        "min_ms": ms(stats.min),
        "max_ms": ms(stats.max_us),
        **{field: ms(stats.percentile_us(q)) for field, q in PERCENTILES.items()},
        "status_codes": {str(code): n for code, n in sorted(stats.status_codes.items())},
    }


class RequestRows(Sequence[dict[str, Any]]):
    """The report's request rows in the tables' order, each made when it is read."""

    def __init__(self, requests: Mapping[RequestKey, Stats], seconds: float) -> None:
        self._rows = sorted(requests.items(), key=request_order)
        self._seconds = seconds

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [self._row(row) for row in self._rows[index]]
        return self._row(self._rows[index])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return map(self._row, self._rows)

    def _row(self, row: tuple[RequestKey, Stats]) -> dict[str, Any]:
        (method, name), stats = row
        return {"method": method, "name": name, **stats_row(stats, self._seconds)}


def plain(value: object) -> list[dict[str, Any]]:
    """``json.dumps``' ``default``: the rows as the list they stand for."""
    if isinstance(value, RequestRows):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON data")


def write_json(data: dict[str, Any], file: IO[str]) -> None:
    """``data`` as ``json.dumps(data, separators=(",", ":"))`` writes it, the request rows one
    at a time."""
    file.write("{")
    for position, (key, value) in enumerate(data.items()):
        file.write(("," if position else "") + json.dumps(key) + ":")
        if isinstance(value, RequestRows):
            file.write("[")
            for number, row in enumerate(value):
                file.write(("," if number else "") + json.dumps(row, separators=(",", ":")))
            file.write("]")
        else:
            file.write(json.dumps(value, separators=(",", ":"), default=plain))
    file.write("}")


def _run(facts: RunFacts) -> dict[str, Any]:
    return {
        "command": facts.command,
        "mode": f"gaggle ({facts.workers} workers)" if facts.workers else "standalone",
        "host": facts.hosts[0] if len(set(facts.hosts)) == 1 else ", ".join(facts.hosts),
        "users": facts.users,
        "hatch_rate": facts.hatch_rate,
        "run_time": facts.run_time,
        "started": instant(facts.started),
        "ended": instant(facts.ended),
        "measured_from": instant(facts.ended - facts.duration),
        "duration": round(facts.duration, 3),
        "reset_metrics": facts.reset_metrics,
        "stopped_by": facts.stopped_by,
        "workers": facts.workers,
        "workers_lost": facts.workers_lost,
        "gaggle_version": facts.version,
        "test_plan": facts.test_plan,
        "iterations": facts.iterations,
        "arrival_rate": facts.arrival_rate,
        "latency": facts.latency,
        "warnings": list(facts.warnings),
        "test_file": facts.test[0] if facts.test else None,
        "test_hash": facts.test[1] if facts.test else None,  # sha256 of the test file
    }


def schedule_row(metrics: Metrics, seconds: float) -> dict[str, Any]:
    """Scheduled starts (an open model's arrivals, paced tasks): scheduled = started + dropped."""
    lag = metrics.lag
    return {
        "scheduled": metrics.scheduled,
        "started": lag.timed_count,
        "dropped": metrics.dropped,
        "started_rps": _rate(lag.timed_count, seconds),
        "lag_p50_ms": ms(lag.percentile_us(0.5)),
        "lag_p99_ms": ms(lag.percentile_us(0.99)),
        "lag_max_ms": ms(lag.max_us),
    }


def _tasks(metrics: Metrics, names: TaskNames, seconds: float) -> Any:
    rows = []
    for key, stats in sorted(metrics.tasks.items()):
        taskset, label = task_label(names, key)
        rows.append({"taskset": taskset, "task": label, **stats_row(stats, seconds)})
    for row in rows:
        del row["status_codes"]  # tasks have none
    return rows


def _errors(errors: dict[str, int]) -> dict[str, Any]:
    ranked = sorted(errors.items(), key=lambda kv: (-kv[1], kv[0]))
    return {
        "distinct": len(ranked),
        "occurrences": sum(errors.values()),
        "shown": [
            {"error": error[:MAX_ERROR_CHARS], "count": count}
            for error, count in ranked[:MAX_ERRORS]
        ],
    }


def _series(series: Series, prefix: tuple[str, ...] = ()) -> dict[str, Any]:
    fields = [f for f in FIELDS if f != "seconds" and (not prefix or f not in RUN_ONLY)]
    return {field: series.column((*prefix, field)) for field in fields}


def _timeline(timeline: Timeline) -> dict[str, Any]:
    totals, requests = timeline.totals, timeline.requests
    return {
        "step": totals.step,
        "time": [round(t, 3) for t in totals.time],
        "seconds": [round(s, 3) for s in totals.column(("seconds",)) if s is not None],
        **_series(totals),
        "by_request": {
            "step": requests.step,
            "time": [round(t, 3) for t in requests.time],
            "seconds": [round(s, 3) for s in requests.column(("seconds",)) if s is not None],
            "series": [
                {"method": method, "name": name, **_series(requests, (method, name))}
                for method, name in timeline.request_names
            ],
            "omitted": len(timeline.omitted),
        },
        # where each stage of a test plan or load shape began (the charts draw a line there)
        "stages": [{"at": round(at, 3), "label": label} for at, label in timeline.stages()],
        # each change through the control API (users, plan, run time, stop): a line there too
        "changes": [
            {"at": round(at, 3), "what": what, "label": label}
            for at, what, label in timeline.changes()
        ],
    }


def build_report(
    facts: RunFacts,
    metrics: Metrics,
    task_names: TaskNames,
    timeline: Timeline,
    verdicts: Sequence[Verdict] = (),
    baseline: Baseline | None = None,
) -> dict[str, Any]:
    """The whole report as JSON-ready data; ``metrics`` is what the console summary printed;
    with a ``baseline``, its ``baseline`` key compares the two runs (``report.comparison``)."""
    seconds = facts.duration
    total = metrics.aggregated_requests()
    compared = (
        {} if baseline is None else {"baseline": compare(baseline, metrics, seconds, facts.test)}
    )
    return {
        "schema": SCHEMA,
        "run": _run(facts),
        "requests": RequestRows(metrics.requests, seconds),
        "requests_total": stats_row(total, seconds),
        "tasks": _tasks(metrics, task_names, seconds),
        "errors": _errors(metrics.errors),
        "schedule": schedule_row(metrics, seconds),
        # cancelled by --stop-timeout while still running: neither served nor failed
        "abandoned": {"requests": metrics.abandoned_requests, "tasks": metrics.abandoned_tasks},
        # how late the event loop ran at worst, the whole run (a task blocked it, or the CPU)
        "loop_lag": {"max_seconds": round(facts.loop_lag, 3)},
        "thresholds": verdict_rows(verdicts),
        "verdict": overall(verdicts),
        **compared,
        "timeline": _timeline(timeline),
    }
