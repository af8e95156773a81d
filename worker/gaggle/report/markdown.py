"""``-R report.md``: the report as Markdown a CI job shows (GitHub's ``$GITHUB_STEP_SUMMARY``, a
GitLab job's Markdown artifact), from the same data as the JSON and HTML reports.

Verdict first (what a reviewer looks for), then the rules, the busiest requests, the errors and
the baseline comparison when there is one. Request names and errors are user data: escaped so a
``|`` cannot break a table nor ``<script>`` become HTML, and truncated; every list is cut to its
top entries, so the file stays far under GitHub's 1 MiB summary limit whatever the run held.
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gaggle.metrics import OTHER_NAMES
from gaggle.report.junit import run_problem, threshold_limit

TOP = 10  # rows per table: the busiest requests, the most frequent errors
MAX_RULES = 50
MAX_NOTES = 20
NAME_CHARS = 200  # a request name or a rule as shown
ERROR_CHARS = 300
MAX_BYTES = 200_000  # a safety net; the bounds above keep a report well under it
BASELINE_METRICS = (
    ("count", "Requests"),
    ("rps", "req/s"),
    ("fail_percent", "Fail %"),
    ("p50_ms", "p50 ms"),
    ("p95_ms", "p95 ms"),
    ("p99_ms", "p99 ms"),
)

# C0 controls (and DEL) as their visible Control Pictures: a newline cannot end a table row
_PICTURES = {code: chr(0x2400 + code) for code in range(0x20)} | {0x7F: "\u2421"}
_OTHER_BREAKS = re.compile("[\x80-\x9f\u2028\u2029]")
_SPECIAL = re.compile(r"([\\`*_\[\]|~$])")
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def escape(text: object, limit: int = NAME_CHARS) -> str:
    """User text as inert Markdown on one line: cut to ``limit`` characters (then …), control
    characters shown, Markdown and HTML characters escaped."""
    value = str(text)
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    value = _OTHER_BREAKS.sub("\ufffd", value.translate(_PICTURES))
    value = "".join(_ENTITIES.get(char, char) for char in value)
    return _SPECIAL.sub(r"\\\1", value)


def number(value: float | None, unit: str = "") -> str:
    """About four significant digits, thousands separated; ``—`` for no value."""
    if value is None or not math.isfinite(value):
        return "—"
    if value == int(value) and abs(value) >= 1:
        text = f"{int(value):,}"
    elif abs(value) >= 100:
        text = f"{value:,.1f}"
    elif abs(value) >= 10:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3g}"
    return text + unit


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 120:
        return f"{minutes} min {rest} s"
    return f"{minutes // 60} h {minutes % 60} min"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    align = ["---", *("---:" for _ in header[1:])]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _more(shown: int, total: int, what: str) -> list[str]:
    return [f"\n…and {total - shown:,} more {what}."] if total > shown else []


def _fail_percent(row: Mapping[str, Any]) -> float:
    return 100 * row["fails"] / row["count"] if row["count"] else 0.0


# --- the sections ---------------------------------------------------------------------------
def verdict(data: Mapping[str, Any]) -> list[str]:
    """The heading line: the verdict and the run in numbers, then what went wrong besides."""
    run, total, rules = data["run"], data["requests_total"], data["thresholds"]
    failed = sum(1 for rule in rules if not rule["passed"])
    if data["verdict"] == "Passed":
        head = f"✅ Passed ({len(rules)} rule{'s' * (len(rules) != 1)})"
    elif data["verdict"] == "Failed":
        head = f"❌ Failed ({failed} of {len(rules)} rule{'s' * (len(rules) != 1)})"
    else:
        head = "⚪ No thresholds"
    facts = [
        head,
        f"{escape(run['stopped_by'])} after {duration(run['duration'])}",
        f"{run['users']:,} users",
        f"{total['count']:,} requests",
        f"{number(total['rps'])} req/s",
        f"{number(_fail_percent(total))} % failed",
    ]
    lines = ["## " + " · ".join(facts), ""]
    where = f"Gaggle {escape(run['gaggle_version'])} load test of {escape(run['host'])}"
    lines.append(f"{where} · {escape(run['mode'])} · started {escape(run['started'])}")
    problem = run_problem(run)
    warnings = [*([problem] if problem else []), *run.get("warnings", [])]
    lines += [f"\n> ⚠️ {escape(text, ERROR_CHARS)}" for text in warnings[:MAX_NOTES]]
    return lines


def thresholds(data: Mapping[str, Any]) -> list[str]:
    rules: Sequence[Mapping[str, Any]] = data["thresholds"]
    if not rules:
        return []
    baseline = any(rule.get("baseline") is not None for rule in rules)
    header = ["Rule", "Observed", "Limit", *(["Baseline"] if baseline else []), "Result"]
    rows = []
    for rule in rules[:MAX_RULES]:
        observed = rule["observed"]
        row = [
            escape(rule["expression"]),
            "never measured" if observed is None else f"{observed:.6g}",
            escape(threshold_limit(rule)),
            *([number(rule.get("baseline"))] if baseline else []),
            "✅ pass" if rule["passed"] else "❌ **fail**",
        ]
        rows.append(row)
    title = "### Thresholds and regression rules"
    return ["", title, "", *_table(header, rows), *_more(MAX_RULES, len(rules), "rules")]


def _request_cells(name: str, row: Mapping[str, Any]) -> list[str]:
    return [
        name,
        f"{row['count']:,}",
        f"{row['fails']:,} ({number(_fail_percent(row))} %)",
        number(row["rps"]),
        number(row["avg_ms"]),
        number(row.get("p50_ms")),
        number(row.get("p95_ms")),
        number(row.get("p99_ms")),
        number(row["max_ms"]),
    ]


def _other(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The names past the top summed: counts and rates add, the mean weighs by count, the max
    is the largest; percentiles do not sum from rows (``—``)."""
    count = sum(row["count"] for row in rows)
    return {
        "count": count,
        "fails": sum(row["fails"] for row in rows),
        "rps": sum(row["rps"] for row in rows),
        "avg_ms": sum(row["avg_ms"] * row["count"] for row in rows) / count if count else 0.0,
        "max_ms": max((row["max_ms"] for row in rows), default=0.0),
    }


def requests(data: Mapping[str, Any]) -> list[str]:
    every: Sequence[Mapping[str, Any]] = data["requests"]
    if not every:
        return ["", "### Requests", "", "No request was made."]
    top = heapq.nsmallest(TOP, every, key=lambda r: (-r["count"], r["name"], r["method"]))
    rows = [_request_cells(escape(f"{r['method']} {r['name']}"), r) for r in top]
    if len(every) > TOP:
        kept = {(r["method"], r["name"]) for r in top}
        rest = [r for r in every if (r["method"], r["name"]) not in kept]
        rows.append(_request_cells(escape(OTHER_NAMES), _other(rest)))
    rows.append(_request_cells("**Aggregated**", data["requests_total"]))
    header = ["Request", "Requests", "Fails", "req/s", "Avg ms", "p50", "p95", "p99", "Max"]
    title = f"### Requests ({min(TOP, len(every))} busiest of {len(every):,})"
    return ["", title, "", *_table(header, rows)]


def errors(data: Mapping[str, Any]) -> list[str]:
    found = data["errors"]
    if not found["distinct"]:
        return []
    shown = found["shown"][:TOP]
    rows = [[escape(e["error"], ERROR_CHARS), f"{e['count']:,}"] for e in shown]
    title = f"### Errors ({found['distinct']:,} distinct, {found['occurrences']:,} in all)"
    return ["", title, "", *_table(["Error", "Count"], rows)]


def change(value: Mapping[str, Any]) -> str:
    """One compared value: ours, and the relative change (bold with an arrow when
    significant)."""
    current = number(value["current"])
    if value.get("baseline") is None:
        return f"{current} (new)"
    relative = value.get("relative")
    if relative is None:  # from zero: no ratio
        return current if not value["current"] else f"{current} (was 0)"
    shown = f"{relative * 100:+.1f} %"
    if value.get("significant"):
        arrow = "▲" if relative > 0 else "▼"
        return f"{current} **{arrow} {shown}**"
    return f"{current} ({shown})"


def _compared_cells(row: Mapping[str, Any]) -> list[str]:
    changes = row["changes"]
    cells = [change(changes[key]) if key in changes else "—" for key, _ in BASELINE_METRICS]
    return [escape(f"{row['method']} {row['name']}"), *cells]


def _names(title: str, names: Sequence[str]) -> list[str]:
    if not names:
        return []
    listed = ", ".join(escape(name) for name in names[:TOP])
    more = f", …and {len(names) - TOP:,} more" if len(names) > TOP else ""
    return [f"- {title}: {listed}{more}"]


def baseline(data: Mapping[str, Any]) -> list[str]:
    """The comparison with ``--baseline``'s run: the aggregate, the busiest requests, notes."""
    base = data.get("baseline")
    if not base:
        return []
    about = [escape(base["file"])]  # no code span: escapes do not work inside one
    if base.get("started"):
        about.append(f"started {escape(base['started'])}")
    if base.get("version"):
        about.append(f"Gaggle {escape(base['version'])}")
    if base.get("same_test") is False:
        about.append("**a different test file**")
    lines = ["", "### Compared with the baseline", "", "Baseline: " + ", ".join(about) + "."]
    lines.append("Bold with ▲/▼: a significant change; in parentheses: within the noise.")
    aggregate = base["aggregate"]
    rows = [
        [label, number(aggregate[key]["baseline"]), change(aggregate[key])]
        for key, label in BASELINE_METRICS
        if key in aggregate
    ]
    lines += ["", *_table(["Aggregated", "Baseline", "Now"], rows)]
    compared: Sequence[Mapping[str, Any]] = base.get("requests", [])
    if compared:
        top = heapq.nsmallest(
            TOP,
            compared,
            key=lambda r: (-r["changes"]["count"]["current"], r["name"], r["method"]),
        )
        header = ["Request", *(label for _, label in BASELINE_METRICS)]
        table = [_compared_cells(row) for row in top]
        lines += ["", *_table(header, table), *_more(len(top), len(compared), "requests")]
    notes = [f"- {escape(note, ERROR_CHARS)}" for note in base.get("notes", [])[:MAX_NOTES]]
    notes += _names("Only in this run", base.get("only_here", []))
    notes += _names("Only in the baseline", base.get("only_in_baseline", []))
    return lines + (["", *notes] if notes else [])


def render_markdown(data: Mapping[str, Any]) -> str:
    """The whole report as Markdown, bounded in size whatever the run held."""
    lines = [
        *verdict(data),
        *thresholds(data),
        *requests(data),
        *errors(data),
        *baseline(data),
    ]
    text = "\n".join(lines) + "\n"
    if len(text.encode()) > MAX_BYTES:  # not reached with the bounds above; never a broken file
        cut = text.encode()[:MAX_BYTES].decode(errors="ignore")
        text = cut[: cut.rfind("\n") + 1] + "\n…(cut: the report is longer than a summary)\n"
    return text
