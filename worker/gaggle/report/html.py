"""The HTML report: one file that renders offline, from the same data as the JSON report.

Tables are plain HTML (readable with scripts off); the charts are drawn by uPlot, whose minified
build ships in ``assets/`` (from the npm registry, ``make report-assets``) and is inlined with our
own small script and the data. A Content-Security-Policy forbids every fetch, so a report can
never reach the network — not even by accident in a later edit.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from gaggle.metrics import NAMES_LIMIT, busiest_keys, request_order
from gaggle.report.comparison import FIELDS
from gaggle.report.model import plain
from gaggle.report.tables import COMPARED_LABELS, readable

ASSETS = resources.files("gaggle.report") / "assets"
CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"
PERCENTILE_COLUMNS = (
    ("p50_ms", "50%"),
    ("p90_ms", "90%"),
    ("p95_ms", "95%"),
    ("p99_ms", "99%"),
    ("p99_9_ms", "99.9%"),
)


def asset(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


def uplot_version() -> str:
    return asset("uPlot.version").strip()


def _inline_script(text: str) -> str:
    if "</script" in text.lower():
        raise ValueError("an inlined script must not contain </script")
    return f"<script>{text}</script>"


def _e(value: object) -> str:
    return html.escape(str(value))


def _count(value: int) -> str:
    return f"{value:,}"


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], css: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _fails(row: dict[str, Any]) -> str:
    share = 100 * row["fails"] / row["count"] if row["count"] else 0.0
    return f"{_count(row['fails'])} ({share:.3g}%)"


def _timing_cells(row: dict[str, Any]) -> list[str]:
    return [readable(row[key]) for key in ("avg_ms", "min_ms", "max_ms")]


def overview(run: dict[str, Any], live: bool = False) -> str:
    """The run's facts; on a live page the run has not ended: its "end" is the last update."""
    run_time = f"{readable(run['run_time'])} s" if run["run_time"] else "until stopped"
    measured = (
        f"{_e(run['measured_from'])} (metrics reset when all users were running)"
        if run["reset_metrics"]
        else "the whole run (--no-reset-metrics)"
    )
    workers = f"{run['workers']} ({run['workers_lost']} lost)" if run["workers"] else "—"
    rows = [
        ("Host", _e(run["host"])),
        ("Mode", _e(run["mode"])),
        ("Users", _count(run["users"])),
        *(
            [("Test plan", f"<code>{_e(run['test_plan'])}</code> (users, seconds per stage)")]
            if run.get("test_plan")
            else [("Hatch rate", f"{readable(run['hatch_rate'])} users/s"), ("Run time", run_time)]
        ),
        *([("Iterations", _count(run["iterations"]))] if run.get("iterations") else []),
        *(
            [("Arrival rate", f"{readable(run['arrival_rate'])} iterations started/s")]
            if run.get("arrival_rate")
            else []
        ),
        *([("Latency", _e(run["latency"]))] if run.get("latency") else []),
        *(("Warning", f"<strong>{_e(warning)}</strong>") for warning in run.get("warnings", [])),
        ("Workers", workers),
        ("Started", _e(run["started"])),
        ("Updated" if live else "Ended", _e(run["ended"])),
        ("Tables cover", f"{readable(run['duration'])} s from {measured}"),
        ("Stopped by", _e(run["stopped_by"] or "—")),
        ("Command", f"<code>{_e(run['command'])}</code>"),
        ("Gaggle", _e(run["gaggle_version"])),
    ]
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="overview"><tbody>{body}</tbody></table>'


def requests_table(data: dict[str, Any]) -> str:
    headers = ["Request", "# reqs", "# fails", "req/s", "fail/s", "Avg (ms)", "Min", "Max"]
    headers += [label for _, label in PERCENTILE_COLUMNS]
    rows = []
    named = [(f"{r['method']} {r['name']}", r) for r in data["requests"]]
    for name, row in [*named, ("Aggregated", data["requests_total"])]:
        rows.append(
            [
                _e(name),
                _count(row["count"]),
                _fails(row),
                readable(row["rps"]),
                readable(row["fail_rps"]),
                *_timing_cells(row),
                *(readable(row[key]) for key, _ in PERCENTILE_COLUMNS),
            ]
        )
    return _table(headers, rows, "numbers")


def schedule_table(row: dict[str, Any]) -> str:
    """Scheduled starts: how many, how many dropped, how late the others began."""
    headers = ["Scheduled", "Started", "Dropped", "start/s", "Lag p50 (ms)", "p99", "Max"]
    cells = [_count(row["scheduled"]), _count(row["started"]), _count(row["dropped"])]
    cells += [readable(row[key]) for key in ("started_rps", "lag_p50_ms", "lag_p99_ms")]
    cells.append(readable(row["lag_max_ms"]))
    return _table(headers, [cells], "numbers")


def schedule_section(row: dict[str, Any] | None) -> list[str]:
    if not row or not row["scheduled"]:
        return []  # no arrivals, no paced tasks
    return ["<h2>Schedule</h2>", schedule_table(row)]


def tasks_table(tasks: list[dict[str, Any]]) -> str:
    if not tasks:
        return "<p>No task metrics (--no-task-metrics, or no task ran).</p>"
    headers = ["Task set: task", "# runs", "# fails", "runs/s", "Avg (ms)", "Min", "Max", "50%"]
    rows = [
        [
            _e(f"{row['taskset']}: {row['task']}"),
            _count(row["count"]),
            _fails(row),
            readable(row["rps"]),
            *_timing_cells(row),
            readable(row["p50_ms"]),
        ]
        for row in tasks
    ]
    return _table(headers, rows, "numbers")


def status_table(data: dict[str, Any]) -> str:
    rows = []
    named = [(f"{r['method']} {r['name']}", r) for r in data["requests"]]
    for name, row in [*named, ("Aggregated", data["requests_total"])]:
        for code, count in row["status_codes"].items():
            label = code if code != "0" else "0 (no response)"
            rows.append([_e(name), _e(label), _count(count)])
    return _table(["Request", "Status", "Count"], rows, "numbers") if rows else "<p>None.</p>"


def errors_table(errors: dict[str, Any]) -> str:
    if not errors["distinct"]:
        return "<p>No errors.</p>"
    rows = [[_count(e["count"]), f"<code>{_e(e['error'])}</code>"] for e in errors["shown"]]
    text = _table(["Count", "Error"], rows, "errors")
    hidden = errors["distinct"] - len(errors["shown"])
    if hidden > 0:
        shown = sum(e["count"] for e in errors["shown"])
        text += (
            f"<p>{_count(hidden)} more distinct errors "
            f"({_count(errors['occurrences'] - shown)} occurrences) are not listed.</p>"
        )
    return text


def _regression(rule: dict[str, Any]) -> bool:
    """A regression rule's row: it has a baseline value, or no limit (none to resolve it)."""
    return rule.get("baseline") is not None or rule.get("limit", 0) is None


def _result(rule: dict[str, Any]) -> str:
    if rule["passed"] and rule.get("limit", 0) is None and rule["observed"] is not None:
        return '<span class="note">not judged: no baseline value</span>'
    return (
        '<span class="pass">passed</span>' if rule["passed"] else '<span class="fail">FAILED</span>'
    )


def thresholds_table(rules: list[dict[str, Any]]) -> str:
    regression = any(_regression(rule) for rule in rules)
    rows = []
    for rule in rules:
        cells = [
            f"<code>{_e(rule['expression'])}</code>",
            "never measured" if rule["observed"] is None else readable(rule["observed"]),
        ]
        if regression:
            cells += [
                "—" if rule.get(key) is None else readable(rule[key])
                for key in ("baseline", "limit")
            ]
        rows.append([*cells, _result(rule)])
    headers = ["Rule", "Observed", *(("Baseline", "Limit") if regression else ()), "Result"]
    return _table(headers, rows, "thresholds")


def _compared_cell(field: str, compared: dict[str, Any]) -> str:
    def value(number: float | None) -> str:
        if number is None:
            return "—"
        if field == "count":
            return _count(int(number))
        return f"{number:.2f}%" if field == "fail_percent" else readable(number)

    change, relative = compared["change"], compared["relative"]
    if change is None:
        delta = "—"
    elif field == "fail_percent":
        delta = f"{change:+.2f} pt"
    else:
        delta = f"{relative:+.1%}" if relative is not None else f"{change:+,.4g}"
    css = "delta sig" if compared["significant"] else "delta"
    return (
        f'{value(compared["current"])}<span class="was">was {value(compared["baseline"])}'
        f'</span><span class="{css}">{delta}</span>'
    )


def baseline_section(compared: dict[str, Any] | None, limit: int = NAMES_LIMIT) -> list[str]:
    """This run against --baseline: the ``limit`` busiest requests now and the aggregate."""
    if not compared:
        return []
    same = {True: "the same test file", False: "another test file", None: "a test file unknown"}
    about = f"{_e(compared['file'])}: a run of {same[compared['same_test']]}"
    if compared["started"]:
        about += f", started {_e(compared['started'])}"
    if compared["version"]:
        about += f", Gaggle {_e(compared['version'])}"
    rows = {(r["method"], r["name"]): r["changes"] for r in compared["requests"]}
    kept = busiest_keys({key: int(c["count"]["current"]) for key, c in rows.items()}, limit)
    shown = sorted(((key, rows[key]) for key in kept), key=request_order)
    named = [(f"{method} {name}", changes) for (method, name), changes in shown]
    table = _table(
        ["Request", *COMPARED_LABELS],
        (
            [_e(name), *(_compared_cell(field, changes[field]) for field in FIELDS)]
            for name, changes in [*named, ("Aggregated", compared["aggregate"])]
        ),
        "numbers comparison",
    )
    notes = list(compared["notes"])
    if len(rows) > limit:
        notes.append(f"{_count(len(rows) - limit)} more compared requests are in the JSON report.")
    return [
        "<h2>Compared with baseline</h2>",
        f'<p class="note">{about}. Bold red: a significant change (beyond what the histograms '
        "resolve and the runs' noise).</p>",
        table,
        *(f'<p class="note">{_e(note)}</p>' for note in notes),
    ]


def _json_for_script(data: dict[str, Any]) -> str:
    """JSON that cannot end its <script> element early."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False, default=plain)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def summary_section(data: dict[str, Any], live: bool = False) -> str:
    """The run and its thresholds: what a live page redraws each second, with the tables."""
    parts = ["<h2>Run</h2>", overview(data["run"], live)]
    if data["thresholds"]:
        parts += [
            f"<h2>Thresholds: {_e(data['verdict'])}</h2>",
            thresholds_table(data["thresholds"]),
        ]
    return "\n".join(parts)


def tables_section(data: dict[str, Any]) -> str:
    return "\n".join(
        [
            "<h2>Requests</h2>",
            requests_table(data),
            *baseline_section(data.get("baseline")),
            *schedule_section(data.get("schedule")),
            "<h2>Tasks</h2>",
            tasks_table(data["tasks"]),
            "<h2>Status codes</h2>",
            status_table(data),
            "<h2>Errors</h2>",
            errors_table(data["errors"]),
        ]
    )


@dataclass(frozen=True, slots=True)
class LiveParts:
    """What a live page adds to the report: its controls, script and settings; and the one
    place it may fetch from (its own server)."""

    controls: str
    script: str
    settings: dict[str, Any]
    csp: str = CSP + "; connect-src 'self'"


def render_html(data: dict[str, Any], live: LiveParts | None = None) -> str:
    run = data["run"]
    step = data["timeline"]["step"]
    kind = "live" if live else "report"
    title = f"Gaggle {kind}: {run['host']} · {run['started'][:19]}"
    sections = [
        f"<h1>{_e(title)}</h1>",
        *([live.controls] if live else []),
        f'<div id="summary-section">{summary_section(data, live is not None)}</div>',
        "<h2>Over time</h2>",
        f'<p class="note">One point per <span id="step">{step}</span> s; the dashed line is '
        "the metrics reset, a thin gold line the start of a test plan's or load shape's stage, "
        "a purple one a change made through the control API. "
        "Drag to zoom, double-click to zoom out.</p>",
        '<div class="chart" id="chart-rps"></div>',
        '<div class="chart" id="chart-latency"></div>',
        '<div class="chart" id="chart-users"></div>',
        "<h3>Per request</h3>",
        '<div class="controls"><label>Show <select id="request-field"></select></label> '
        '<input id="request-filter" type="search" placeholder="filter names"></div>',
        '<div id="request-picker"></div>',
        '<div class="chart" id="chart-requests"></div>',
        f'<div id="tables-section">{tables_section(data)}</div>',
        f'<p class="note">Charts by uPlot {_e(uplot_version())} (MIT licence).</p>',
    ]
    live_settings = (
        [
            f'<script type="application/json" id="gaggle-live">{_json_for_script(live.settings)}'
            "</script>"
        ]
        if live
        else []
    )
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{live.csp if live else CSP}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<link rel="icon" href="data:,">',
            f"<title>{_e(title)}</title>",
            f"<style>{asset('uPlot.min.css')}\n{asset('report.css')}</style>",
            "</head><body><main>",
            *sections,
            "</main>",
            f'<script type="application/json" id="gaggle-data">{_json_for_script(data)}</script>',
            *live_settings,
            _inline_script(asset("uPlot.iife.min.js")),
            _inline_script(asset("report.js")),
            *([_inline_script(live.script)] if live else []),
            "</body></html>",
            "",
        ]
    )
