"""``--baseline FILE``: a previous run's JSON report, read into the numbers a run is compared with.

Two kinds are read: Gaggle's own (``-R NAME.json``, schema ``gaggle-report/1``) and Goose 0.19's
(``--report-file NAME.json``: ``raw_request_metrics`` and ``raw_response_metrics``, times in whole
milliseconds, an ``Aggregated`` row). Anything else — a missing file, not JSON, another schema, a
row without its numbers — is refused before the run starts, with one line naming --baseline, the
path and what is allowed (exit 2). The process that judges the run reads it (standalone, or the
manager), never a worker. ``Baseline.values`` is what the regression rules read: a plain mapping,
so the metrics layer stays below this one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gaggle.errors import ConfigError
from gaggle.metrics import BASELINE_PERCENTILES, BaselineValues, RequestKey

OPTION = "--baseline"
GAGGLE, GOOSE = "gaggle", "goose"
SCHEMA = "gaggle-report/1"  # model.SCHEMA: the one schema this reads (a test keeps them equal)
ALLOWED = (
    f"give a previous run's JSON report: Gaggle's (-R NAME.json, schema {SCHEMA}) or Goose "
    "0.19's (--report-file NAME.json)"
)
# the metrics a baseline gives, as rules name them
METRICS = (
    "requests",
    "failures",
    "failRatio",
    "rps",
    "avg",
    "min",
    "max",
    *BASELINE_PERCENTILES.values(),
)
# our report's time fields -> the metric names
_OURS = {"avg_ms": "avg", "min_ms": "min", "max_ms": "max", "p50_ms": "p50", "p90_ms": "p90",
         "p95_ms": "p95", "p99_ms": "p99", "p99_9_ms": "p99.9"}  # fmt: skip
_GOOSE_TIMES = {"response_time_average": "avg", "response_time_minimum": "min",
                "response_time_maximum": "max"}  # fmt: skip
_GOOSE_PERCENTILES = {"percentile_50": "p50", "percentile_90": "p90", "percentile_95": "p95",
                      "percentile_99": "p99"}  # fmt: skip
GOOSE_AGGREGATE = ("", "Aggregated")  # Goose's all-requests row: no method, this name


@dataclass(frozen=True, slots=True)
class Figures:
    """One row of a baseline: counts, a rate, and times in ms (what the file holds of them)."""

    count: int
    fails: int
    rps: float
    times: Mapping[str, float] = field(default_factory=dict)  # "avg", "p95"… -> ms

    @property
    def fail_ratio(self) -> float:
        return self.fails / self.count if self.count else 0.0

    def value(self, metric: str) -> float | None:
        if metric == "requests":
            return float(self.count)
        if metric == "failures":
            return float(self.fails)
        if metric == "failRatio":
            return self.fail_ratio
        if metric == "rps":
            return self.rps
        return self.times.get(metric)


@dataclass(frozen=True, slots=True)
class Baseline:
    """A previous run, as read from its report: per request and in aggregate."""

    path: str  # as given
    kind: str  # GAGGLE or GOOSE
    requests: Mapping[RequestKey, Figures]  # in the file's order
    aggregate: Figures
    test_file: str | None = None  # the test file's name and sha256 (a Gaggle report's)
    test_hash: str | None = None
    started: str | None = None  # ISO 8601
    version: str | None = None  # the Gaggle that wrote it

    @property
    def values(self) -> BaselineValues:
        """(request as "GET /" or None, metric) -> value: what the regression rules read."""
        return Lookup(self)


class Lookup(Mapping[tuple[str | None, str], float]):
    """A baseline's values by (request, metric), found when asked (no table of them is built)."""

    def __init__(self, baseline: Baseline) -> None:
        self._baseline = baseline

    def _figures(self, request: str | None) -> Figures | None:
        if request is None:
            return self._baseline.aggregate
        method, _, name = request.partition(" ")
        return self._baseline.requests.get((method, name))

    def __getitem__(self, key: tuple[str | None, str]) -> float:
        figures = self._figures(key[0])
        value = None if figures is None else figures.value(key[1])
        if value is None:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[tuple[str | None, str]]:
        rows: list[tuple[str | None, Figures]] = [(None, self._baseline.aggregate)]
        rows += [(f"{m} {n}", figures) for (m, n), figures in self._baseline.requests.items()]
        for request, figures in rows:
            for metric in METRICS:
                if figures.value(metric) is not None:
                    yield request, metric

    def __len__(self) -> int:
        return sum(1 for _ in self)


class _Refused(Exception):
    """What is wrong with the file, said as the end of one sentence."""


def load_baseline(path: str) -> Baseline:
    """Read and check the file; raises ConfigError naming --baseline, the path and what is
    allowed."""
    try:
        text = Path(path).read_bytes()
    except OSError as error:
        raise _error(path, f"cannot be read ({error.strerror or error})") from None
    try:
        data = json.loads(text)
    except UnicodeDecodeError:
        raise _error(path, "is not JSON (not UTF-8 text)") from None
    except json.JSONDecodeError as error:
        raise _error(path, f"is not JSON ({error.msg}, line {error.lineno})") from None
    try:
        return _read(path, data)
    except _Refused as refused:
        raise _error(path, str(refused)) from None


def _error(path: str, problem: str) -> ConfigError:
    return ConfigError(OPTION, path, ALLOWED, f"{OPTION}: {path!r} {problem}; {ALLOWED}")


def _read(path: str, data: object) -> Baseline:
    if not isinstance(data, dict):
        raise _Refused("is JSON but not a report (not an object)")
    if "schema" in data:
        if data["schema"] != SCHEMA:
            raise _Refused(f"has schema {data['schema']!r}, which this Gaggle does not read")
        return _gaggle(path, data)
    if "raw_request_metrics" in data:
        return _goose(path, data)
    raise _Refused("is JSON but not a report (no 'schema', no 'raw_request_metrics')")


# --- Gaggle's report --------------------------------------------------------------------------
def _gaggle(path: str, data: dict[str, Any]) -> Baseline:
    rows = data.get("requests")
    if not isinstance(rows, list):
        raise _Refused("has no 'requests' list")
    requests: dict[RequestKey, Figures] = {}
    for index, row in enumerate(rows):
        where = f"requests[{index}]"
        key = (_text(row, "method", where), _text(row, "name", where))
        if key in requests:
            raise _Refused(f"lists {key[0]} {key[1]} twice ({where})")
        requests[key] = _our_figures(row, where)
    run = data.get("run")
    run = run if isinstance(run, dict) else {}
    return Baseline(
        path=path,
        kind=GAGGLE,
        requests=requests,
        aggregate=_our_figures(data.get("requests_total"), "requests_total"),
        test_file=_optional_text(run.get("test_file")),
        test_hash=_optional_text(run.get("test_hash")),
        started=_optional_text(run.get("started")),
        version=_optional_text(run.get("gaggle_version")),
    )


def _our_figures(row: object, where: str) -> Figures:
    if not isinstance(row, dict):
        raise _Refused(f"has no {where} object")
    count = _count(row, "count", where)
    fails = _count(row, "fails", where)
    if fails > count:
        raise _Refused(f"says {where} failed {fails} of {count} requests")
    times = {metric: _number(row, key, where) for key, metric in _OURS.items()}
    return Figures(count, fails, _number(row, "rps", where), times)


def _text(row: object, key: str, where: str) -> str:
    value = row.get(key) if isinstance(row, dict) else None
    if not isinstance(value, str):
        raise _Refused(f"has no text {where}.{key}")
    return value


def _optional_text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _count(row: dict[str, Any], key: str, where: str) -> int:
    value = row.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Refused(f"has {where}.{key} = {value!r}, not a count (a whole number ≥ 0)")
    return value


def _number(row: dict[str, Any], key: str, where: str) -> float:
    value = row.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Refused(f"has {where}.{key} = {value!r}, not a number")
    if value < 0:
        raise _Refused(f"has {where}.{key} = {value!r}, below 0")
    return float(value)


# --- Goose 0.19's report ----------------------------------------------------------------------
def _goose(path: str, data: dict[str, Any]) -> Baseline:
    rows = data.get("raw_request_metrics")
    responses = data.get("raw_response_metrics", [])
    if not isinstance(rows, list) or not isinstance(responses, list):
        raise _Refused("has no 'raw_request_metrics' and 'raw_response_metrics' lists")
    percentiles: dict[RequestKey, dict[str, float]] = {}
    for index, row in enumerate(responses):
        where = f"raw_response_metrics[{index}]"
        key = (_text(row, "method", where), _text(row, "name", where))
        percentiles[key] = _goose_times(row, _GOOSE_PERCENTILES, where)
    requests: dict[RequestKey, Figures] = {}
    aggregate: Figures | None = None
    for index, row in enumerate(rows):
        where = f"raw_request_metrics[{index}]"
        key = (_text(row, "method", where), _text(row, "name", where))
        figures = _goose_figures(row, percentiles.get(key, {}), where)
        if key == GOOSE_AGGREGATE:
            aggregate = figures
        else:
            requests[key] = figures
    if aggregate is None:  # summed; its percentiles are not in the file
        rows_read = list(requests.values())
        count, fails = sum(f.count for f in rows_read), sum(f.fails for f in rows_read)
        aggregate = Figures(count, fails, sum(f.rps for f in rows_read))
    return Baseline(path, GOOSE, requests, aggregate, started=_goose_started(data))


def _goose_figures(row: dict[str, Any], percentiles: dict[str, float], where: str) -> Figures:
    count = _goose_value(row, "number_of_requests", where)
    fails = _goose_value(row, "number_of_failures", where)
    rps = _goose_value(row, "requests_per_second", where)
    if count is None or fails is None or rps is None:
        raise _Refused(f"has no numbers of requests, failures and requests per second in {where}")
    if int(count) != count or int(fails) != fails or fails > count:
        raise _Refused(f"has {where} with {fails} failures of {count} requests")
    times = _goose_times(row, _GOOSE_TIMES, where)
    return Figures(int(count), int(fails), rps, {**times, **percentiles})


def _goose_times(row: dict[str, Any], keys: dict[str, str], where: str) -> dict[str, float]:
    found = {metric: _goose_value(row, key, where) for key, metric in keys.items()}
    return {metric: value for metric, value in found.items() if value is not None}


def _goose_value(row: object, key: str, where: str) -> float | None:
    """A Goose number: plain, a numeric string (before 0.17), or a ``{"value": …}`` with its
    delta; null (no request timed) is None."""
    value = row.get(key) if isinstance(row, dict) else None
    if isinstance(value, dict):
        value = value.get("value")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise _Refused(f"has {where}.{key} = {value!r}, not a number") from None
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Refused(f"has {where}.{key} = {value!r}, not a number")
    if value < 0:
        raise _Refused(f"has {where}.{key} = {value!r}, below 0")
    return float(value)


def _goose_started(data: dict[str, Any]) -> str | None:
    """When the Goose run began: its first test plan step's timestamp, when the file has one."""
    metrics = data.get("raw_metrics")
    history = metrics.get("history") if isinstance(metrics, dict) else None
    if isinstance(history, list) and history and isinstance(history[0], dict):
        return _optional_text(history[0].get("timestamp"))
    return None
