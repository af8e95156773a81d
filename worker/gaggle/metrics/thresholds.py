"""Pass/fail rules on a run's numbers: ``p95(GET /) < 300``, ``failRatio < 0.01``, ``rps > 50``.

Why in the engine: a CI job wants a load test to fail its build (exit code 3) when the service is
too slow, and the operator's ``status.verdict`` must come from the same rules evaluated on the same
merged numbers. A rule names a metric, optionally one request (as the tables show it: method and
name, ``GET /``), a comparison and a number. Times are milliseconds; ``failRatio`` is 0..1.
Rules are evaluated on the measured phase (after the reset, unless --no-reset-metrics), but for
``loopLag``: the worst event loop lag of the whole run (every process of a gaggle), in ms.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gaggle.metrics.aggregate import Metrics
from gaggle.metrics.stats import Stats

FLAG = "--threshold"
SCALARS = ("avg", "min", "max", "failRatio", "rps", "requests", "failures")
# the run's scheduled starts (open model, pacing): dropped arrivals, lag percentiles (ms)
SCHEDULE_SCALARS = ("dropped", "lagMax")
LOOP_LAG = "loopLag"  # the event loop's worst lag (ms): a task blocked it, or the CPU was saturated
OPERATORS = {
    "<": float.__lt__,
    "<=": float.__le__,
    ">": float.__gt__,
    ">=": float.__ge__,
}
_RULE = re.compile(
    r"^\s*(?P<metric>[A-Za-z][A-Za-z0-9.]*)\s*(?:\((?P<request>[^()]*)\))?\s*"
    r"(?P<op><=|>=|<|>)\s*(?P<value>[-+0-9.eE]+)\s*$"
)
_PERCENTILE = re.compile(r"^p(\d+(?:\.\d+)?)$")
_LAG = re.compile(r"^lagP(\d+(?:\.\d+)?)$")
ALLOWED = (
    "use METRIC[(REQUEST)] OP NUMBER, e.g. 'p95(GET /) < 300' or 'failRatio < 0.01'; METRIC is "
    "pNN (e.g. p50, p99.9; ms), "
    + ", ".join(SCALARS)
    + ", the schedule's dropped, lagPNN (e.g. lagP99; ms), lagMax, or loopLag (the event "
    "loop's worst lag, ms); OP is <, <=, > or >="
)


class ThresholdError(ValueError):
    def __init__(self, text: object, why: str = "") -> None:
        self.text, self.why = text, why or ALLOWED
        super().__init__(f"{FLAG}: {text!r} is not allowed; {self.why}")


@dataclass(frozen=True, slots=True)
class Threshold:
    metric: str
    op: str
    value: float
    request: str | None = None  # "GET /"; None: all requests together

    def __str__(self) -> str:
        target = f"({self.request})" if self.request is not None else ""
        return f"{self.metric}{target} {self.op} {self.value:g}"

    @property
    def quantile(self) -> float | None:
        match = _PERCENTILE.match(self.metric) or _LAG.match(self.metric)
        return float(match.group(1)) / 100 if match else None

    @property
    def on_schedule(self) -> bool:
        """A rule on the scheduled starts (dropped, lag), not on the requests."""
        return self.metric in SCHEDULE_SCALARS or _LAG.match(self.metric) is not None


@dataclass(frozen=True, slots=True)
class Verdict:
    threshold: Threshold
    observed: float | None  # None: the request was never made
    passed: bool

    @property
    def expression(self) -> str:
        return str(self.threshold)


def parse_threshold(text: object) -> Threshold:
    match = _RULE.match(str(text)) if isinstance(text, str) else None
    if match is None:
        raise ThresholdError(text)
    metric, request = match["metric"], match["request"]
    percentile = _PERCENTILE.match(metric) or _LAG.match(metric)
    if metric not in (*SCALARS, *SCHEDULE_SCALARS, LOOP_LAG) and percentile is None:
        raise ThresholdError(text, f"unknown metric {metric!r}; " + ALLOWED)
    if percentile and not 0 < float(percentile.group(1)) < 100:
        raise ThresholdError(text, "a percentile is between p0 and p100, e.g. p95 or p99.9")
    if request is not None and (metric in SCHEDULE_SCALARS or _LAG.match(metric)):
        raise ThresholdError(text, f"{metric} is the whole run's schedule: name no request")
    if request is not None and metric == LOOP_LAG:
        raise ThresholdError(text, f"{metric} is the whole run's event loop: name no request")
    try:
        value = float(match["value"])
    except ValueError:
        raise ThresholdError(text) from None
    if not math.isfinite(value):
        raise ThresholdError(text, "the number must be finite")
    if request is not None:
        request = " ".join(request.split())
        if not request:
            raise ThresholdError(text, "name a request in the parentheses, e.g. p95(GET /)")
    return Threshold(metric=metric, op=match["op"], value=value, request=request)


def observe(
    threshold: Threshold, metrics: Metrics, duration: float, loop_lag: float = 0.0
) -> float | None:
    """The number the rule compares, or None when its request was never made. ``loop_lag``:
    the run's worst event loop lag in seconds."""
    if threshold.metric == LOOP_LAG:
        return loop_lag * 1000
    if threshold.on_schedule:
        if threshold.metric == "dropped":
            return float(metrics.dropped)
        if threshold.metric == "lagMax":
            return metrics.lag.max_us / 1000
        return metrics.lag.percentile_us(threshold.quantile or 0.0) / 1000
    if threshold.request is None:
        stats = metrics.aggregated_requests()
    else:
        found = _find(metrics, threshold.request)
        if found is None:
            return None
        stats = found
    quantile = threshold.quantile
    if quantile is not None:
        return stats.percentile_us(quantile) / 1000
    if threshold.metric == "avg":
        return stats.mean_us / 1000
    if threshold.metric == "min":
        return stats.min / 1000
    if threshold.metric == "max":
        return stats.max_us / 1000
    if threshold.metric == "failRatio":
        return stats.fail_count / stats.count if stats.count else 0.0
    if threshold.metric == "rps":
        return stats.count / duration if duration > 0 else 0.0
    if threshold.metric == "failures":
        return float(stats.fail_count)
    return float(stats.count)


def _find(metrics: Metrics, request: str) -> Stats | None:
    """``GET /`` (method and name) or a bare name when only one method used it."""
    method, _, name = request.partition(" ")
    stats = metrics.requests.get((method, name))
    if stats is not None:
        return stats
    by_name = [s for (_, n), s in metrics.requests.items() if n == request]
    if len(by_name) == 1:
        return by_name[0]
    return None


def evaluate(
    thresholds: list[Threshold], metrics: Metrics, duration: float, loop_lag: float = 0.0
) -> list[Verdict]:
    verdicts = []
    for threshold in thresholds:
        observed = observe(threshold, metrics, duration, loop_lag)
        passed = observed is not None and OPERATORS[threshold.op](observed, threshold.value)
        verdicts.append(Verdict(threshold, observed, passed))
    return verdicts


def verdict_rows(verdicts: Sequence[Verdict]) -> list[dict[str, Any]]:
    """JSON-ready rules for the report and the LoadTest status: ``observed`` is None when the
    rule's request was never made (or its value is not a finite number)."""
    return [
        {
            "expression": v.expression,
            "passed": v.passed,
            "observed": None
            if v.observed is None or not math.isfinite(v.observed)
            else round(v.observed, 6),
        }
        for v in verdicts
    ]


def overall(verdicts: Sequence[Verdict]) -> str | None:
    """``Passed``/``Failed`` over all rules; None without rules."""
    if not verdicts:
        return None
    return "Passed" if all(v.passed for v in verdicts) else "Failed"
