"""Console tables in the seed's layout: per task, per request, percentiles, status codes.

Reporters read a ``Metrics`` snapshot plus the names of the test's task sets and tasks; they never
touch the hot path. Times are shown in milliseconds with enough decimals that a sub-millisecond
target does not read as 0.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from gaggle.metrics import (
    NAMES_LIMIT,
    OTHER_NAMES,
    Metrics,
    Stats,
    TaskNames,
    Verdict,
    busiest,
    busiest_keys,
    folded_line,
    request_order,
)
from gaggle.report.baseline import Baseline
from gaggle.report.comparison import FIELDS, compare

log = logging.getLogger(__name__)

PERCENTILES = (0.5, 0.75, 0.98, 0.99, 0.999, 0.9999)
PERCENTILE_LABELS = ("50%", "75%", "98%", "99%", "99.9%", "99.99%")


@dataclass(frozen=True, slots=True)
class TableOptions:
    task_names: TaskNames
    duration: float  # seconds the metrics cover, for rates
    status_codes: bool = False
    task_metrics: bool = True
    latency: str = ""  # what the response times measure, said under the percentiles
    warnings: tuple[str, ...] = ()  # e.g. coordinated omission likely: printed last
    loop_lag: float = 0.0  # seconds: the event loop's worst lag this run (shown when notable)
    names_limit: int = NAMES_LIMIT  # the busiest request names shown; the rest: "(other names)"
    baseline: Baseline | None = None  # --baseline: a table compares the run with it
    test: tuple[str, str] | None = None  # this run's test file (name, sha256), for that table


def readable(value: float) -> str:
    """About four significant digits, never an exponent: 1,234 · 280.0 · 47.91 · 0.412."""
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.1f}"
    if value >= 10:
        return f"{value:.2f}"
    return f"{value:.3f}"


def format_ms(us: float) -> str:
    return readable(us / 1000)


def format_rate(count: int, seconds: float) -> str:
    return readable(count / seconds if seconds > 0 else 0.0)


def format_fails(stats: Stats) -> str:
    share = 100 * stats.fail_count / stats.count if stats.count else 0.0
    return f"{stats.fail_count:,} ({share:.3g}%)"


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", show_edge=False)
    table.add_column(columns[0], justify="left", no_wrap=True)
    for column in columns[1:]:
        table.add_column(column, justify="right", no_wrap=True)
    return table


def _count_row(name: str, stats: Stats, seconds: float) -> list[str]:
    return [
        name,
        f"{stats.count:,}",
        format_fails(stats),
        format_rate(stats.count, seconds),
        format_rate(stats.fail_count, seconds),
    ]


def _time_row(name: str, stats: Stats) -> list[str]:
    return [
        name,
        format_ms(stats.mean_us),
        format_ms(stats.min),
        format_ms(stats.max_us),
        format_ms(stats.percentile_us(0.5)),
    ]


def task_tables(metrics: Metrics, options: TableOptions) -> list[Table]:
    counts = _table("PER TASK METRICS", "Name", "# times run", "# fails", "task/s", "fail/s")
    times = _table("", "Name", "Avg (ms)", "Min", "Max", "Median")
    for ts_index, (taskset, tasks) in enumerate(options.task_names):
        counts.add_row(f"{ts_index + 1}: {taskset}", "", "", "", "")
        times.add_row(f"{ts_index + 1}: {taskset}", "", "", "", "")
        for task_index, task in enumerate(tasks):
            stats = metrics.tasks.get((ts_index, task_index), Stats())
            label = f"  {task_index + 1}: {task}"
            counts.add_row(*_count_row(label, stats, options.duration))
            times.add_row(*_time_row(label, stats))
    total = metrics.aggregated_tasks()
    counts.add_section()
    times.add_section()
    counts.add_row(*_count_row("Aggregated", total, options.duration))
    times.add_row(*_time_row("Aggregated", total))
    return [counts, times]


def _request_rows(metrics: Metrics, limit: int) -> list[tuple[str, Stats]]:
    """The busiest ``limit`` names in name order, then ``(other names)`` summing the rest."""
    view = busiest(metrics.requests, limit)
    rows = [(f"{method} {name}", stats) for (method, name), stats in view.shown]
    return rows if view.other is None else [*rows, (OTHER_NAMES, view.other)]


_SECTIONS = (OTHER_NAMES, "Aggregated")  # rows under a line of their own (a name has a method)


def request_tables(metrics: Metrics, options: TableOptions) -> list[Table]:
    rows = _request_rows(metrics, options.names_limit)
    total = metrics.aggregated_requests()
    counts = _table("PER REQUEST METRICS", "Name", "# reqs", "# fails", "req/s", "fail/s")
    times = _table("", "Name", "Avg (ms)", "Min", "Max", "Median")
    percentiles = _table("PERCENTILES (ms)", "Name", *PERCENTILE_LABELS)
    for name, stats in [*rows, ("Aggregated", total)]:
        if name in _SECTIONS:
            for table in (counts, times, percentiles):
                table.add_section()
        counts.add_row(*_count_row(name, stats, options.duration))
        times.add_row(*_time_row(name, stats))
        percentiles.add_row(name, *(format_ms(stats.percentile_us(q)) for q in PERCENTILES))
    tables = [counts, times, percentiles]
    if options.status_codes:
        codes = _table("", "Name", "Status codes")
        for name, stats in [*rows, ("Aggregated", total)]:
            if name in _SECTIONS:
                codes.add_section()
            codes.add_row(name, format_status_codes(stats))
        tables.append(codes)
    return tables


COMPARED_LABELS = ("# reqs", "req/s", "fail %", "p50 (ms)", "p95", "p99")
SIGNIFICANT_NOTE = (
    "* a significant change: beyond what the histograms resolve and the runs' noise "
    "(README: A baseline to beat)"
)


def _compared_value(field: str, value: float | None) -> str:
    if value is None:
        return "—"
    if field == "count":
        return f"{value:,.0f}"
    return f"{value:.2f}%" if field == "fail_percent" else readable(value)


def _compared_change(field: str, compared: dict[str, Any]) -> str:
    change, relative = compared["change"], compared["relative"]
    if change is None:
        text = "—"
    elif field == "fail_percent":
        text = f"{change:+.2f} pt"
    elif relative is not None:
        text = f"{relative:+.1%}"
    else:
        text = f"{change:+,.4g}"
    return text + ("*" if compared["significant"] else "")


def comparison_table(compared: dict[str, Any], limit: int) -> Table:
    """The run against its baseline: per request (the ``limit`` busiest now) and in aggregate,
    this run's values, the baseline's and the change; ``*`` marks a significant one."""
    title = f"COMPARED WITH BASELINE ({compared['file']}"
    title += f", {compared['started']})" if compared["started"] else ")"
    table = _table(title, "Name", *COMPARED_LABELS)
    rows = {(row["method"], row["name"]): row["changes"] for row in compared["requests"]}
    kept = busiest_keys({key: int(c["count"]["current"]) for key, c in rows.items()}, limit)
    shown = sorted(((key, rows[key]) for key in kept), key=request_order)
    named = [(f"{method} {name}", changes) for (method, name), changes in shown]
    for name, changes in [*named, ("Aggregated", compared["aggregate"])]:
        table.add_section()
        table.add_row(name, *(_compared_value(f, changes[f]["current"]) for f in FIELDS))
        table.add_row("  baseline", *(_compared_value(f, changes[f]["baseline"]) for f in FIELDS))
        cells = [_compared_change(f, changes[f]) for f in FIELDS]
        table.add_row("  change", *(Text(c, style="bold") if "*" in c else c for c in cells))
    return table


def print_comparison(console: Console, metrics: Metrics, options: TableOptions) -> None:
    """The comparison table, then what it cannot show: notes, the names past the busiest."""
    if options.baseline is None:
        return
    compared = compare(options.baseline, metrics, options.duration, options.test)
    console.print()
    console.print(comparison_table(compared, options.names_limit))
    console.print(SIGNIFICANT_NOTE)
    if (folded := len(compared["requests"]) - options.names_limit) > 0:
        console.print(f"{folded:,} more request(s) are compared in the JSON and HTML reports (-R)")
    for note in compared["notes"]:
        console.print(note)


def format_status_codes(stats: Stats) -> str:
    return ", ".join(
        f"{count:,} [{code if code else 'no response'}]"
        for code, count in sorted(stats.status_codes.items())
    )


def schedule_table(metrics: Metrics, options: TableOptions) -> Table:
    """Scheduled starts (arrivals, paced tasks): how many, dropped, and how late they began."""
    table = _table(
        "SCHEDULE (arrivals and paced tasks)",
        "Scheduled",
        "Started",
        "Dropped",
        "start/s",
        "Lag p50 (ms)",
        "p99",
        "Max",
    )
    lag = metrics.lag
    table.add_row(
        f"{metrics.scheduled:,}",
        f"{lag.timed_count:,}",
        f"{metrics.dropped:,}",
        format_rate(lag.timed_count, options.duration),
        format_ms(lag.percentile_us(0.5)),
        format_ms(lag.percentile_us(0.99)),
        format_ms(lag.max_us),
    )
    return table


def abandoned_line(metrics: Metrics) -> str:
    """What the stop timeout cancelled, on a line of its own (not failures); "" when nothing."""
    requests, tasks = metrics.abandoned_requests, metrics.abandoned_tasks
    if not (requests or tasks):
        return ""
    return (
        f"Abandoned at the stop: {requests:,} request(s) in flight and {tasks:,} task(s), "
        "cancelled after --stop-timeout (not counted as failures)"
    )


LOOP_LAG_SHOWN = 0.1  # seconds: a loop this late has visibly delayed the times measured then


def loop_lag_line(seconds: float) -> str:
    """The event loop's worst lag, on a line of its own when notable; "" otherwise."""
    if seconds < LOOP_LAG_SHOWN:
        return ""
    return (
        f"Event loop lag: up to {format_ms(seconds * 1e6)} ms (a task blocked the loop, or the "
        "CPU was saturated: times measured then include the wait)"
    )


def print_tables(console: Console, metrics: Metrics, options: TableOptions) -> None:
    tables: list[Table] = []
    if options.task_metrics and options.task_names:
        tables.extend(task_tables(metrics, options))
    tables.extend(request_tables(metrics, options))
    for table in tables:
        console.print()
        console.print(table)
    print_comparison(console, metrics, options)  # after the request tables
    tables = []
    if metrics.scheduled:
        tables.append(schedule_table(metrics, options))
    if metrics.errors:
        errors = _table("ERRORS", "Error", "Count")
        for error, count in sorted(metrics.errors.items(), key=lambda kv: -kv[1])[:20]:
            errors.add_row(error, f"{count:,}")
        tables.append(errors)
    for table in tables:
        console.print()
        console.print(table)
    if (folded := len(metrics.requests) - options.names_limit) > 0:
        console.print(f"\n{folded_line(folded, options.names_limit)}")
    abandoned = abandoned_line(metrics)
    if abandoned:
        console.print(f"\n{abandoned}")
    if lag := loop_lag_line(options.loop_lag):
        console.print(f"\n{lag}")
    if options.latency:
        console.print(f"\nLatency: {options.latency}")
    for warning in options.warnings:
        console.print()
        console.print(Text(warning, style="bold"))


def _limit_cells(verdict: Verdict) -> list[str]:
    """A regression rule's baseline value and the limit it gave (an absolute rule: its number)."""
    if verdict.unjudged:
        return ["no baseline value", "—"]
    base = "—" if verdict.baseline is None else f"{verdict.baseline:,.4g}"
    return [base, "—" if verdict.limit is None else f"{verdict.limit:,.4g}"]


def print_verdicts(console: Console, verdicts: list[Verdict], shown: bool = True) -> list[Verdict]:
    """The THRESHOLDS table (unless not ``shown``): each rule, the number observed, and whether
    it held (with regression rules: the baseline's value and the limit it gave); a failed rule
    is also a warning in the log, and so is a regression rule left unjudged. Returns the
    verdicts."""
    regression = any(verdict.threshold.baseline_based for verdict in verdicts)
    if verdicts and shown:
        limits = ("Baseline", "Limit") if regression else ()
        table = _table("THRESHOLDS", "Rule", "Observed", *limits, "Result")
        for verdict in verdicts:
            observed = "no such request" if verdict.observed is None else f"{verdict.observed:,.4g}"
            result = "passed" if verdict.passed else "FAILED"
            result = "not judged" if verdict.unjudged else result
            cells = _limit_cells(verdict) if regression else []
            table.add_row(verdict.expression, observed, *cells, result)
        console.print()
        console.print(table)
    for verdict in verdicts:
        if verdict.unjudged:
            log.warning(
                "threshold %s: no baseline value (the baseline has no such request or metric); "
                "not judged",
                verdict.expression,
            )
        elif not verdict.passed and verdict.limit is not None and verdict.baseline is not None:
            log.warning(
                "threshold failed: %s (observed %s, limit %s from baseline %s)",
                verdict.expression,
                verdict.observed,
                verdict.limit,
                verdict.baseline,
            )
        elif not verdict.passed:
            log.warning("threshold failed: %s (observed %s)", verdict.expression, verdict.observed)
    return verdicts
