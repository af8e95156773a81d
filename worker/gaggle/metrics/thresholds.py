"""Pass/fail rules on a run's numbers: ``p95(GET /) < 300``, ``failRatio < 0.01``, ``rps > 50``.

Why in the engine: a CI job wants a load test to fail its build (exit code 3) when the service is
too slow, and the operator's ``status.verdict`` must come from the same rules evaluated on the same
merged numbers. A rule names a metric, optionally one request (as the tables show it: method and
name, ``GET /``), a comparison and a number. Times are milliseconds; ``failRatio`` is 0..1.
Rules are evaluated on the measured phase (after the reset, unless --no-reset-metrics), but for
``loopLag``: the worst event loop lag of the whole run (every process of a gaggle), in ms.

A regression rule compares with a previous run (``--baseline``) instead of a number:
``p95(GET /) < baseline + 10%``, ``rps > baseline - 5%``, ``failRatio <= baseline``,
``avg < baseline + 20`` (the metric's units). Its limit is resolved from the baseline's value of
the same metric and request; a request the baseline lacks leaves the rule unjudged ("no baseline
value": it passes, and says so). The baseline reaches this layer as a plain mapping
(``BaselineValues``): metrics knows nothing of report files.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gaggle.metrics.aggregate import Metrics, RequestKey
from gaggle.metrics.stats import Stats

FLAG = "--threshold"
SCALARS = ("avg", "min", "max", "failRatio", "rps", "requests", "failures")
# the run's scheduled starts (open model, pacing): dropped arrivals, lag percentiles (ms)
SCHEDULE_SCALARS = ("dropped", "lagMax")
LOOP_LAG = "loopLag"  # the event loop's worst lag (ms): a task blocked it, or the CPU was saturated
BASELINE = "baseline"
# What a JSON report holds, so what a baseline can give: the scalars and these percentiles.
BASELINE_PERCENTILES = {50.0: "p50", 90.0: "p90", 95.0: "p95", 99.0: "p99", 99.9: "p99.9"}
# (request as "GET /", or None for all requests together; metric as a rule names it) -> value
BaselineValues = Mapping[tuple[str | None, str], float]
OPERATORS = {
    "<": float.__lt__,
    "<=": float.__le__,
    ">": float.__gt__,
    ">=": float.__ge__,
}
_RULE = re.compile(
    r"^\s*(?P<metric>[A-Za-z][A-Za-z0-9.]*)\s*(?:\((?P<request>[^()]*)\))?\s*"
    r"(?P<op><=|>=|<|>)\s*(?P<value>.*?)\s*$"
)
_NUMBER = re.compile(r"^[-+0-9.eE]+$")
_RELATIVE = re.compile(
    rf"^{BASELINE}(?:\s*(?P<sign>[-+])\s*(?P<amount>[0-9.]+(?:[eE][-+]?[0-9]+)?)\s*(?P<pc>%)?)?$"
)
_PERCENTILE = re.compile(r"^p(\d+(?:\.\d+)?)$")
_LAG = re.compile(r"^lagP(\d+(?:\.\d+)?)$")
ALLOWED = (
    "use METRIC[(REQUEST)] OP NUMBER, e.g. 'p95(GET /) < 300' or 'failRatio < 0.01', or compare "
    "with --baseline: METRIC[(REQUEST)] OP baseline [+|- N[%]], e.g. 'p95 < baseline + 10%'; "
    "METRIC is pNN (e.g. p50, p99.9; ms), "
    + ", ".join(SCALARS)
    + ", the schedule's dropped, lagPNN (e.g. lagP99; ms), lagMax, or loopLag (the event "
    "loop's worst lag, ms); OP is <, <=, > or >="
)
BASELINE_ALLOWED = (
    "a baseline (a JSON report) gives "
    + ", ".join((*SCALARS, *BASELINE_PERCENTILES.values()))
    + "; compare other metrics with a number"
)


class ThresholdError(ValueError):
    def __init__(self, text: object, why: str = "") -> None:
        self.text, self.why = text, why or ALLOWED
        super().__init__(f"{FLAG}: {text!r} is not allowed; {self.why}")


@dataclass(frozen=True, slots=True)
class Threshold:
    metric: str
    op: str
    value: float  # the limit of an absolute rule (0 for a regression rule)
    request: str | None = None  # "GET /"; None: all requests together
    # A regression rule's limit is the baseline's value plus ``offset`` (the metric's units) or
    # plus ``relative`` percent of it; both None: an absolute rule (``value`` is the limit).
    offset: float | None = None
    relative: float | None = None

    def __str__(self) -> str:
        target = f"({self.request})" if self.request is not None else ""
        return f"{self.metric}{target} {self.op} {self._bound()}"

    def _bound(self) -> str:
        if self.relative is not None:
            return f"{BASELINE} {'-' if self.relative < 0 else '+'} {abs(self.relative):g}%"
        if self.offset is not None:
            sign = "-" if self.offset < 0 else "+"
            return f"{BASELINE} {sign} {abs(self.offset):g}" if self.offset else BASELINE
        return f"{self.value:g}"

    @property
    def baseline_based(self) -> bool:
        """A regression rule: its limit comes from a previous run (--baseline)."""
        return self.offset is not None or self.relative is not None

    @property
    def baseline_metric(self) -> str:
        """The metric as a baseline names it: ``p95.0`` is ``p95``."""
        match = _PERCENTILE.match(self.metric)
        if match:
            return BASELINE_PERCENTILES.get(float(match.group(1)), self.metric)
        return self.metric

    def limit_from(self, baseline: float) -> float:
        """A regression rule's limit, given the baseline's value of its metric."""
        if self.relative is not None:
            return baseline * (1 + self.relative / 100)
        return baseline + (self.offset or 0.0)

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
    limit: float | None = None  # what ``observed`` was compared with; None: no baseline value
    baseline: float | None = None  # a regression rule's baseline value

    @property
    def expression(self) -> str:
        return str(self.threshold)

    @property
    def unjudged(self) -> bool:
        """A regression rule whose baseline has no value for it: passed, not judged."""
        return self.threshold.baseline_based and self.limit is None and self.observed is not None


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
    value, offset, relative = _bound(text, metric, match["value"])
    if request is not None:
        request = " ".join(request.split())
        if not request:
            raise ThresholdError(text, "name a request in the parentheses, e.g. p95(GET /)")
    return Threshold(metric, match["op"], value, request, offset, relative)


def _bound(text: object, metric: str, bound: str) -> tuple[float, float | None, float | None]:
    """(value, offset, relative) of a rule's right-hand side: a number or a baseline form."""
    relative_form = _RELATIVE.match(bound)
    if relative_form is None and bound.startswith(BASELINE):
        raise ThresholdError(
            text, "compare with baseline, baseline + N, baseline - N, baseline + N% or "
            "baseline - N%, e.g. 'p95 < baseline + 10%'"
        )  # fmt: skip
    if relative_form is None:
        if _NUMBER.match(bound) is None:
            raise ThresholdError(text)
        try:
            value = float(bound)
        except ValueError:
            raise ThresholdError(text) from None
        if not math.isfinite(value):
            raise ThresholdError(text, "the number must be finite")
        return value, None, None
    if metric not in SCALARS and BASELINE_PERCENTILES.get(_percent(metric) or -1.0) is None:
        raise ThresholdError(text, f"{metric} has no baseline value: " + BASELINE_ALLOWED)
    if relative_form["amount"] is None:
        return 0.0, 0.0, None
    amount = float(relative_form["amount"])
    if not math.isfinite(amount):
        raise ThresholdError(text, "the number must be finite")
    signed = -amount if relative_form["sign"] == "-" else amount
    if relative_form["pc"] is None:
        return 0.0, signed, None
    if signed < -100:
        raise ThresholdError(text, "a value falls by at most 100%: use baseline - N% with N ≤ 100")
    return 0.0, None, signed


def _percent(metric: str) -> float | None:
    match = _PERCENTILE.match(metric)
    return float(match.group(1)) if match else None


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
        key = _key(metrics, threshold.request)
        if key is None:
            return None
        stats = metrics.requests[key]
    return _value(threshold, stats, duration)


def _value(threshold: Threshold, stats: Stats, duration: float) -> float:
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


def _key(metrics: Metrics, request: str) -> RequestKey | None:
    """``GET /`` (method and name) or a bare name when only one method used it."""
    method, _, name = request.partition(" ")
    if (method, name) in metrics.requests:
        return method, name
    by_name = [key for key in metrics.requests if key[1] == request]
    return by_name[0] if len(by_name) == 1 else None


def _baseline_value(
    threshold: Threshold, metrics: Metrics, baseline: BaselineValues | None
) -> float | None:
    """The baseline's value of the rule's metric and request (a bare name: as this run made it)."""
    if baseline is None:
        return None
    request = threshold.request
    if request is not None:
        key = _key(metrics, request)
        request = f"{key[0]} {key[1]}" if key is not None else request
    return baseline.get((request, threshold.baseline_metric))


def evaluate(
    thresholds: list[Threshold],
    metrics: Metrics,
    duration: float,
    loop_lag: float = 0.0,
    baseline: BaselineValues | None = None,
) -> list[Verdict]:
    """Each rule's verdict; ``baseline`` resolves the regression rules' limits."""
    verdicts = []
    for threshold in thresholds:
        observed = observe(threshold, metrics, duration, loop_lag)
        base: float | None = None
        limit: float | None = threshold.value
        if threshold.baseline_based:
            base = _baseline_value(threshold, metrics, baseline)
            limit = None if base is None else threshold.limit_from(base)
        if observed is None:
            passed = False  # never made: fails, never guessed
        elif limit is None:
            passed = True  # no baseline value: not judged (the verdict says so)
        else:
            passed = OPERATORS[threshold.op](observed, limit)
        verdicts.append(Verdict(threshold, observed, passed, limit, base))
    return verdicts


def _number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 6)


def verdict_rows(verdicts: Sequence[Verdict]) -> list[dict[str, Any]]:
    """JSON-ready rules for the report and the LoadTest status: ``observed`` is None when the
    rule's request was never made (or its value is not a finite number); ``limit`` what it was
    compared with (None: a regression rule with no baseline value); ``baseline`` a regression
    rule's baseline value."""
    return [
        {
            "expression": v.expression,
            "passed": v.passed,
            "observed": _number(v.observed),
            "limit": _number(v.limit),
            "baseline": _number(v.baseline),
        }
        for v in verdicts
    ]


def overall(verdicts: Sequence[Verdict]) -> str | None:
    """``Passed``/``Failed`` over all rules; None without rules."""
    if not verdicts:
        return None
    return "Passed" if all(v.passed for v in verdicts) else "Failed"
