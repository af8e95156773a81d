"""A run compared with its baseline: per request and in aggregate, for count, req/s, fail %, p50,
p95 and p99, the baseline's value, ours, the change, the relative change and whether it is
significant.

``relative`` is the change over the baseline's value (0.1 = 10 % more; None when the baseline's
value is 0 or missing); ``fail_percent`` is in percent and its change in percentage points.
A change is *significant* when it is more than the runs' noise, decided simply:

- p50, p95, p99: more than 5 % of the baseline's value, AND more than the numbers resolve — two
  histograms each within ``RELATIVE_ERROR`` (≈0.4 %) of the true value, so 0.8 % between two runs;
  a Goose baseline rounds its times (1 ms up to 100 ms, 10 ms to 500 ms, 100 ms to 1 s, then 1 s),
  so its rounding step — AND both runs made at least 5 requests beyond the percentile (p50: 10
  requests, p95: 100, p99: 500): a tail of fewer is one or two slow requests, not a trend.
- fail %: a two-proportion z-test on both runs' failures and requests, |z| > 3 (equal failure
  rates differ that much by chance about 0.3 % of the time).
- count, req/s: more than 5 % of the baseline's value (runs of one length and load agree to a
  few %; a rate that moved more is a change worth saying).

Requests made in only one of the runs are listed as such (``only_here``, ``only_in_baseline``);
a baseline of another test file (its hash differs) is said in ``notes``: neither is an error.
"""

from __future__ import annotations

import math
from typing import Any

from gaggle.metrics import RELATIVE_ERROR, Metrics, Stats, ms, request_order
from gaggle.report.baseline import GOOSE, Baseline, Figures

SIGNIFICANT = 0.05  # a relative change beyond the runs' noise (percentiles, count, req/s)
Z_LIMIT = 3.0  # the fail ratio's two-proportion z-test
TAIL = 5  # requests beyond a percentile, in each run, for its change to count
FIELDS = ("count", "rps", "fail_percent", "p50_ms", "p95_ms", "p99_ms")
PERCENTILES = {"p50_ms": ("p50", 0.5), "p95_ms": ("p95", 0.95), "p99_ms": ("p99", 0.99)}
LISTED = 5  # names a note lists before "and N more"


def change(baseline: float | None, current: float, significant: bool) -> dict[str, Any]:
    """One compared value (``C`` in README's schema)."""
    delta = None if baseline is None else current - baseline
    relative = None if delta is None or not baseline else delta / baseline
    return {
        "baseline": None if baseline is None else round(float(baseline), 6),
        "current": round(float(current), 6),
        "change": None if delta is None else round(float(delta), 6),
        "relative": None if relative is None else round(relative, 6),
        "significant": significant,
    }


def _beyond(base: float | None, current: float) -> bool:
    """Count and req/s: more than ``SIGNIFICANT`` of the baseline's value."""
    if base is None:
        return False
    return abs(current - base) > SIGNIFICANT * base if base else current != base


def fail_z(base_fails: int, base_count: int, fails: int, count: int) -> float:
    """The two-proportion z statistic of two runs' failure rates (0 when it cannot tell)."""
    if not base_count or not count:
        return 0.0
    pooled = (base_fails + fails) / (base_count + count)
    variance = pooled * (1 - pooled) * (1 / base_count + 1 / count)
    if variance <= 0:
        return 0.0
    return (fails / count - base_fails / base_count) / math.sqrt(variance)


def resolution_ms(kind: str, value: float) -> float:
    """The smallest change of a percentile the two runs' numbers can tell from none."""
    if kind != GOOSE:
        return 2 * RELATIVE_ERROR * value
    if value <= 100:
        return 1.0
    return 10.0 if value <= 500 else 100.0 if value <= 1000 else 1000.0


def changes(base: Figures, stats: Stats, duration: float, kind: str) -> dict[str, Any]:
    """The six compared values of one row (a request, or the aggregate)."""
    count = stats.count
    rps = round(count / duration, 3) if duration > 0 else 0.0
    share = 100 * stats.fail_count / count if count else 0.0
    compared = {
        "count": change(base.count, count, _beyond(base.count, count)),
        "rps": change(base.rps, rps, _beyond(base.rps, rps)),
        "fail_percent": change(
            100 * base.fail_ratio,
            share,
            abs(fail_z(base.fails, base.count, stats.fail_count, count)) > Z_LIMIT,
        ),
    }
    for field, (metric, quantile) in PERCENTILES.items():
        before, now = base.times.get(metric), ms(stats.percentile_us(quantile))
        enough = min(base.count, count) * (1 - quantile) >= TAIL - 1e-9
        significant = (
            before is not None
            and enough
            and abs(now - before) > SIGNIFICANT * before
            and abs(now - before) > resolution_ms(kind, before)
        )
        compared[field] = change(before, now, significant)
    return compared


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:LISTED])
    return shown + (f" and {len(names) - LISTED:,} more" if len(names) > LISTED else "")


def _notes(
    baseline: Baseline,
    test: tuple[str, str] | None,
    only_here: list[str],
    only_there: list[str],
) -> tuple[bool | None, list[str]]:
    """Whether the baseline ran the same test file (None: it cannot tell), and what to say."""
    notes = []
    same: bool | None = None
    if baseline.test_hash is None or test is None:
        notes.append(
            "The baseline does not say which test file it ran (a Goose report, or one written "
            "before Gaggle recorded it): whether it is the same test is unknown."
        )
    else:
        same = baseline.test_hash == test[1]
        if not same:
            notes.append(
                f"The baseline ran another test file: {baseline.test_file or '?'} (sha256 "
                f"{baseline.test_hash[:12]}…), this run {test[0]} (sha256 {test[1][:12]}…); "
                "requests of one name may not do the same."
            )
    if baseline.kind == GOOSE:
        notes.append(
            "The baseline is a Goose report: its times are whole milliseconds, rounded above "
            "100 ms (to 10 ms up to 500 ms, 100 ms up to 1 s, then 1 s); smaller changes are "
            "not significant."
        )
    if only_here:
        notes.append(
            f"{len(only_here):,} request(s) of this run are not in the baseline: "
            f"{_listed(only_here)}."
        )
    if only_there:
        notes.append(
            f"{len(only_there):,} request(s) of the baseline were not made in this run: "
            f"{_listed(only_there)}."
        )
    return same, notes


def compare(
    baseline: Baseline, metrics: Metrics, duration: float, test: tuple[str, str] | None
) -> dict[str, Any]:
    """The report's ``baseline`` key (README: "A baseline to beat"). ``test``: this run's test
    file (name, sha256), or None when not known."""
    rows, only_here = [], []
    for (method, name), stats in sorted(metrics.requests.items(), key=request_order):
        base = baseline.requests.get((method, name))
        if base is None:
            only_here.append(f"{method} {name}")
        else:
            compared = changes(base, stats, duration, baseline.kind)
            rows.append({"method": method, "name": name, "changes": compared})
    only_there = [f"{m} {n}" for m, n in baseline.requests if (m, n) not in metrics.requests]
    same, notes = _notes(baseline, test, only_here, only_there)
    total = metrics.aggregated_requests()
    return {
        "file": baseline.path,
        "started": baseline.started,
        "version": baseline.version,
        "same_test": same,
        "notes": notes,
        "aggregate": changes(baseline.aggregate, total, duration, baseline.kind),
        "requests": rows,
        "only_here": only_here,
        "only_in_baseline": only_there,
    }
