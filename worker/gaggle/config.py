"""The run configuration model: one validated value per option, whatever set it.

Options come from three places, in rising priority: built-in defaults, ``Attack.set_default``
(the seed's ``GooseDefault``), and the command line. Each is converted and checked by the same
function here, so a bad value gets the same message (option, value, what is allowed) whether it
came from a flag, code, or — later — a LoadTest spec that the operator validates with this model.
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any
from urllib.parse import urlsplit

from gaggle.ports import METRICS_PORT
from gaggle.thresholds import Threshold, ThresholdError, parse_threshold


class ConfigError(ValueError):
    """A bad option value; ``str()`` is the one line the user sees."""

    def __init__(self, option: str, value: object, allowed: str, message: str = "") -> None:
        self.option, self.value, self.allowed = option, value, allowed
        super().__init__(message or f"{option}: {value!r} is not allowed; {allowed}")


SCHEDULERS = ("round-robin", "serial", "random")
REQUESTS_FORMATS = ("json", "csv", "raw")
DEBUG_FORMATS = ("json", "raw")
HTTP_CLIENTS = ("aiohttp", "httptools", "reqwest")
DEFAULT_HTTP_CLIENT = "httptools"  # the same suite as the others; fastest and leanest (README)
REPORT_FORMATS = {".html": "html", ".htm": "html", ".json": "json"}  # by file extension


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


# --- converters: accept a flag's text or a Python value; raise ConfigError --------------------
_DURATION = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$")


def parse_duration(option: str, value: object) -> float:
    """``30s``, ``20m``, ``3h``, ``1h30m`` or a number of seconds."""
    allowed = "use a duration such as 30s, 20m, 3h, 1h30m or a number of seconds ≥ 0"
    if isinstance(value, bool):
        raise ConfigError(option, value, allowed)
    if isinstance(value, int | float):
        if value < 0:
            raise ConfigError(option, value, allowed)
        return float(value)
    text = str(value).strip()
    try:
        seconds = float(text)
    except ValueError:
        match = _DURATION.match(text)
        if not text or match is None:
            raise ConfigError(option, value, allowed) from None
        parts = {k: int(v) for k, v in match.groupdict(default="0").items()}
        return float(parts["h"] * 3600 + parts["m"] * 60 + parts["s"])
    if seconds < 0 or seconds != seconds:
        raise ConfigError(option, value, allowed)
    return seconds


def _whole(option: str, minimum: int) -> Callable[[object], int]:
    def convert(value: object) -> int:
        allowed = f"use a whole number ≥ {minimum}"
        if isinstance(value, bool):
            raise ConfigError(option, value, allowed)
        try:
            number = int(str(value).strip()) if not isinstance(value, int) else value
        except ValueError:
            raise ConfigError(option, value, allowed) from None
        if number < minimum:
            raise ConfigError(option, value, allowed)
        return number

    return convert


def _positive_float(option: str) -> Callable[[object], float]:
    def convert(value: object) -> float:
        allowed = "use a number > 0 (users per second; fractions allowed)"
        try:
            number = float(str(value).strip()) if not isinstance(value, bool) else -1.0
        except ValueError:
            raise ConfigError(option, value, allowed) from None
        if not number > 0 or number == float("inf"):
            raise ConfigError(option, value, allowed)
        return number

    return convert


def _choice(option: str, choices: tuple[str, ...]) -> Callable[[object], str]:
    def convert(value: object) -> str:
        text = str(value).strip().lower()
        if text not in choices:
            raise ConfigError(option, value, "use one of: " + ", ".join(choices))
        return text

    return convert


def _flag(option: str) -> Callable[[object], bool]:
    def convert(value: object) -> bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(option, value, "use True or False")

    return convert


def _path(option: str) -> Callable[[object], str | None]:
    def convert(value: object) -> str | None:
        if value is None:
            return None
        text = os.fspath(value) if isinstance(value, os.PathLike) else value
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(option, value, "use a file name")
        return text

    return convert


def report_path(value: object) -> str | None:
    """A report file name; its extension picks the format (checked here, written at the end)."""
    text = _path("--report-file")(value)
    if text is not None and os.path.splitext(text)[1].lower() not in REPORT_FORMATS:
        allowed = "use a file name ending in " + ", ".join(REPORT_FORMATS) + " (the format)"
        raise ConfigError("--report-file", value, allowed)
    return text


def validate_host(option: str, value: object) -> str:
    allowed = "use an http:// or https:// URL with a host name, e.g. http://127.0.0.1:8080"
    if not isinstance(value, str):
        raise ConfigError(option, value, allowed)
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(option, value, allowed)
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigError(option, value, allowed) from None
    return value.strip().rstrip("/")


def validate_thresholds(value: object) -> tuple[str, ...]:
    """One rule (text) or several (a list); each is kept in its canonical text."""
    rules = [value] if isinstance(value, str | Threshold) else value
    if not isinstance(rules, list | tuple):
        raise ConfigError("--threshold", value, "use a rule such as 'p95 < 300' or a list of them")
    canonical = []
    for rule in rules:
        try:
            canonical.append(str(rule if isinstance(rule, Threshold) else parse_threshold(rule)))
        except ThresholdError as error:
            raise ConfigError("--threshold", rule, error.why) from None
    return tuple(canonical)


def validate_bind(option: str, value: object) -> str:
    allowed = f"use HOST:PORT, e.g. 0.0.0.0:{METRICS_PORT} or 127.0.0.1:0 (any free port)"
    host, _, port = str(value).strip().rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535 or " " in host:
        raise ConfigError(option, value, allowed)
    return f"{host}:{int(port)}"


# field name → (flag shown in messages, converter)
CONVERTERS: dict[str, tuple[str, Callable[[object], Any]]] = {
    "host": ("--host", lambda v: None if v is None else validate_host("--host", v)),
    "users": ("--users", _whole("--users", 1)),
    "hatch_rate": ("--hatch-rate", _positive_float("--hatch-rate")),
    "run_time": ("--run-time", lambda v: parse_duration("--run-time", v)),
    "log_level": ("--log-level", _whole("--log-level", 0)),
    "log_file": ("--log-file", _path("--log-file")),
    "verbose": ("--verbose", _whole("--verbose", 0)),
    "running_metrics": ("--running-metrics", lambda v: parse_duration("--running-metrics", v)),
    "no_reset_metrics": ("--no-reset-metrics", _flag("--no-reset-metrics")),
    "no_metrics": ("--no-metrics", _flag("--no-metrics")),
    "no_task_metrics": ("--no-task-metrics", _flag("--no-task-metrics")),
    "only_summary": ("--only-summary", _flag("--only-summary")),
    "requests_file": ("--requests-file", _path("--requests-file")),
    "requests_format": ("--requests-format", _choice("--requests-format", REQUESTS_FORMATS)),
    "debug_file": ("--debug-file", _path("--debug-file")),
    "debug_format": ("--debug-format", _choice("--debug-format", DEBUG_FORMATS)),
    "no_debug_body": ("--no-debug-body", _flag("--no-debug-body")),
    "status_codes": ("--status-codes", _flag("--status-codes")),
    "throttle_requests": ("--throttle-requests", _whole("--throttle-requests", 1)),
    "sticky_follow": ("--sticky-follow", _flag("--sticky-follow")),
    "scheduler": ("--scheduler", _choice("--scheduler", SCHEDULERS)),
    "http_client": ("--http-client", _choice("--http-client", HTTP_CLIENTS)),
    "metrics_bind": (
        "--metrics-bind",
        lambda v: None if v is None else validate_bind("--metrics-bind", v),
    ),
    "thresholds": ("--threshold", validate_thresholds),
    "report_file": ("--report-file", report_path),
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
