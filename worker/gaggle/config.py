"""The run configuration model: one validated value per option, whatever set it.

Options come from three places, in rising priority: built-in defaults, ``Attack.set_default``
(the seed's ``GooseDefault``), and the command line. Each is converted and checked by the same
function here, so a bad value gets the same message (option, value, what is allowed) whether it
came from a flag, code, or — later — a LoadTest spec that the operator validates with this model.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from gaggle.converters import (
    DEBUG_FORMATS,
    DEFAULT_HTTP_CLIENT,
    HTTP_CLIENTS,
    REPORT_FORMATS,
    REQUESTS_FORMATS,
    SCHEDULERS,
    ConfigError,
    Converter,
    boolean,
    choice,
    optional,
    parse_duration,
    path,
    rate,
    report_path,
    thresholds,
    validate_bind,
    validate_host,
    whole,
)
from gaggle.thresholds import Threshold, parse_threshold

__all__ = [
    "CONVERTERS",
    "DEBUG_FORMATS",
    "DEFAULT_HTTP_CLIENT",
    "HTTP_CLIENTS",
    "REPORT_FORMATS",
    "REQUESTS_FORMATS",
    "SCHEDULERS",
    "ConfigError",
    "Default",
    "RunConfig",
    "build_config",
    "parse_duration",
    "validate_bind",
    "validate_host",
]


@dataclass(frozen=True, slots=True)
class RunConfig:
    host: str | None = None
    users: int = 0  # 0 until resolved: the default is the number of CPUs
    hatch_rate: float = 1.0
    run_time: float = 0.0  # seconds; 0 runs until stopped
    log_level: int = 0
    log_file: str | None = None
    verbose: int = 0
    running_metrics: float = 0.0
    no_reset_metrics: bool = False
    no_metrics: bool = False
    no_task_metrics: bool = False
    only_summary: bool = False
    requests_file: str | None = None
    requests_format: str = "json"
    debug_file: str | None = None
    debug_format: str = "json"
    no_debug_body: bool = False
    status_codes: bool = False
    throttle_requests: int = 0  # 0: no throttle
    sticky_follow: bool = False
    scheduler: str = "round-robin"
    http_client: str = DEFAULT_HTTP_CLIENT
    metrics_bind: str | None = None  # HOST:PORT for /metrics and /summary
    report_file: str | None = None  # .html/.htm or .json, by extension
    thresholds: tuple[str, ...] = ()  # pass/fail rules, canonical text (gaggle.thresholds)

    @property
    def threshold_rules(self) -> list[Threshold]:
        return [parse_threshold(text) for text in self.thresholds]


class Default(enum.Enum):
    """Keys for ``Attack.set_default`` (the seed's GooseDefault); values are RunConfig fields."""

    HOST = "host"
    USERS = "users"
    HATCH_RATE = "hatch_rate"
    RUN_TIME = "run_time"
    LOG_LEVEL = "log_level"
    LOG_FILE = "log_file"
    VERBOSE = "verbose"
    RUNNING_METRICS = "running_metrics"
    NO_RESET_METRICS = "no_reset_metrics"
    NO_METRICS = "no_metrics"
    NO_TASK_METRICS = "no_task_metrics"
    ONLY_SUMMARY = "only_summary"
    REQUESTS_FILE = "requests_file"
    REQUESTS_FORMAT = "requests_format"
    DEBUG_FILE = "debug_file"
    DEBUG_FORMAT = "debug_format"
    NO_DEBUG_BODY = "no_debug_body"
    STATUS_CODES = "status_codes"
    THROTTLE_REQUESTS = "throttle_requests"
    STICKY_FOLLOW = "sticky_follow"
    SCHEDULER = "scheduler"
    HTTP_CLIENT = "http_client"
    METRICS_BIND = "metrics_bind"
    THRESHOLDS = "thresholds"
    REPORT_FILE = "report_file"


def _bound(flag: str, convert: Converter) -> tuple[str, Callable[[object], Any]]:
    return flag, lambda value: convert(flag, value)


# field name → (flag shown in messages, converter)
CONVERTERS: dict[str, tuple[str, Callable[[object], Any]]] = {
    "host": _bound("--host", optional(validate_host)),
    "users": _bound("--users", whole(1)),
    "hatch_rate": _bound("--hatch-rate", rate),
    "run_time": _bound("--run-time", parse_duration),
    "log_level": _bound("--log-level", whole(0)),
    "log_file": _bound("--log-file", path),
    "verbose": _bound("--verbose", whole(0)),
    "running_metrics": _bound("--running-metrics", parse_duration),
    "no_reset_metrics": _bound("--no-reset-metrics", boolean),
    "no_metrics": _bound("--no-metrics", boolean),
    "no_task_metrics": _bound("--no-task-metrics", boolean),
    "only_summary": _bound("--only-summary", boolean),
    "requests_file": _bound("--requests-file", path),
    "requests_format": _bound("--requests-format", choice(REQUESTS_FORMATS)),
    "debug_file": _bound("--debug-file", path),
    "debug_format": _bound("--debug-format", choice(DEBUG_FORMATS)),
    "no_debug_body": _bound("--no-debug-body", boolean),
    "status_codes": _bound("--status-codes", boolean),
    "throttle_requests": _bound("--throttle-requests", whole(1)),
    "sticky_follow": _bound("--sticky-follow", boolean),
    "scheduler": _bound("--scheduler", choice(SCHEDULERS)),
    "http_client": _bound("--http-client", choice(HTTP_CLIENTS)),
    "metrics_bind": _bound("--metrics-bind", optional(validate_bind)),
    "thresholds": _bound("--threshold", thresholds),
    "report_file": _bound("--report-file", report_path),
}
assert set(CONVERTERS) == {f.name for f in fields(RunConfig)}


def build_config(*layers: Mapping[str, object]) -> RunConfig:
    """Merge layers (later wins; a None value means "not set") and validate every value."""
    merged: dict[str, object] = {}
    for layer in layers:
        merged.update({k: v for k, v in layer.items() if v is not None})
    values: dict[str, Any] = {}
    for name, raw in merged.items():
        if name not in CONVERTERS:
            raise ConfigError("option", name, "use one of: " + ", ".join(sorted(CONVERTERS)))
        values[name] = CONVERTERS[name][1](raw)
    config = RunConfig(**values)
    if config.users == 0:
        config = replace(config, users=os.cpu_count() or 1)
    return config
