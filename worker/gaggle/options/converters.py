"""What each option accepts: a converter takes the option's flag (for the message) and a value —
a flag's text, a Python value from ``set_default`` or a LoadTest spec's — and returns it checked,
or raises ConfigError with the one line the user sees. Run options and Gaggle-mode options use the
same kind of converter, named in the option table next to each flag.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from gaggle.errors import ConfigError
from gaggle.kits import METRICS_PORT, join_host_port, split_host_port
from gaggle.load import PlanStage, canonical
from gaggle.metrics import Threshold, ThresholdError, parse_threshold

T = TypeVar("T")
Converter = Callable[[str, object], Any]  # (flag, value) -> checked value; raises ConfigError

SCHEDULERS = ("round-robin", "serial", "random")
REQUESTS_FORMATS = ("json", "csv", "raw")
DEBUG_FORMATS = ("json", "raw")
HTTP_CLIENTS = ("aiohttp", "httptools", "reqwest")
DEFAULT_HTTP_CLIENT = "httptools"  # the same suite as the others; fastest and leanest (README)
LATENCIES = ("intended", "service")  # what a request's time is measured from (--latency)
REPORT_FORMATS = {".html": "html", ".htm": "html", ".json": "json"}  # by file extension


def optional(convert: Callable[[str, object], T]) -> Callable[[str, object], T | None]:
    """``convert``, letting None (not set) through."""

    def checked(option: str, value: object) -> T | None:
        return None if value is None else convert(option, value)

    return checked


# --- run options ------------------------------------------------------------------------------
_DURATION = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?$")


def parse_duration(option: str, value: object) -> float:
    """``30s``, ``20m``, ``3h``, ``1h30m`` or a number of seconds."""
    allowed = "use a duration such as 30s, 20m, 3h, 1h30m, 0.5s or a number of seconds ≥ 0"
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
        parts = {k: float(v) for k, v in match.groupdict(default="0").items()}
        return parts["h"] * 3600 + parts["m"] * 60 + parts["s"]
    if seconds < 0 or seconds != seconds:
        raise ConfigError(option, value, allowed)
    return seconds


def status_interval(option: str, value: object) -> float:
    """A duration of at least one second: the live view reads its figures once a second."""
    seconds = parse_duration(option, value)
    if seconds < 1:
        raise ConfigError(option, value, "use a duration of at least 1s, e.g. 10s or 1m")
    return seconds


def whole(minimum: int) -> Callable[[str, object], int]:
    """A whole number ≥ ``minimum``, from an int or its text."""

    def convert(option: str, value: object) -> int:
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


def rate(option: str, value: object, allowed: str = "") -> float:
    """Users per second: a finite number > 0."""
    allowed = allowed or "use a number > 0 (users per second; fractions allowed)"
    try:
        number = float(str(value).strip()) if not isinstance(value, bool) else -1.0
    except ValueError:
        raise ConfigError(option, value, allowed) from None
    if not number > 0 or number == float("inf"):
        raise ConfigError(option, value, allowed)
    return number


def arrival_rate(option: str, value: object) -> float:
    """An open model's arrivals: iterations started per second, a finite number > 0."""
    return rate(option, value, "use a number > 0 (iterations started per second, e.g. 50 or 0.5)")


def choice(choices: tuple[str, ...]) -> Callable[[str, object], str]:
    def convert(option: str, value: object) -> str:
        text = str(value).strip().lower()
        if text not in choices:
            raise ConfigError(option, value, "use one of: " + ", ".join(choices))
        return text

    return convert


def boolean(option: str, value: object) -> bool:
    """A switch: argparse's ``store_true`` gives True; code gives True or False."""
    if isinstance(value, bool):
        return value
    raise ConfigError(option, value, "use True or False")


def path(option: str, value: object) -> str | None:
    if value is None:
        return None
    text = os.fspath(value) if isinstance(value, os.PathLike) else value
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(option, value, "use a file name")
    return text


def report_path(option: str, value: object) -> str | None:
    """A report file name; its extension picks the format (checked here, written at the end)."""
    text = path(option, value)
    if text is not None and os.path.splitext(text)[1].lower() not in REPORT_FORMATS:
        allowed = "use a file name ending in " + ", ".join(REPORT_FORMATS) + " (the format)"
        raise ConfigError(option, value, allowed)
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


def thresholds(option: str, value: object) -> tuple[str, ...]:
    """One rule (text) or several (a list); each is kept in its canonical text."""
    rules = [value] if isinstance(value, str | Threshold) else value
    if not isinstance(rules, list | tuple):
        raise ConfigError(option, value, "use a rule such as 'p95 < 300' or a list of them")
    canonical = []
    for rule in rules:
        try:
            canonical.append(str(rule if isinstance(rule, Threshold) else parse_threshold(rule)))
        except ThresholdError as error:
            raise ConfigError(option, rule, error.why) from None
    return tuple(canonical)


def validate_bind(option: str, value: object) -> str:
    allowed = (
        f"use HOST:PORT, e.g. 0.0.0.0:{METRICS_PORT}, [::]:{METRICS_PORT} (every address, IPv4 "
        "and IPv6) or 127.0.0.1:0 (any free port)"
    )
    host, port = split_host_port(str(value))
    if not host or not port.isdigit() or int(port) > 65535 or " " in host or "[" in host:
        raise ConfigError(option, value, allowed)
    return join_host_port(host, int(port))


WEB_PORT = 8089  # Locust's web UI port: the example README gives for --web


def web_bind(option: str, value: object) -> str:
    """``[HOST:]PORT``; a bare port is on loopback, where the page's controls need no token."""
    text = str(value).strip()
    if text.isdigit():
        text = f"127.0.0.1:{text}"
    try:
        return validate_bind(option, text)
    except ConfigError:
        allowed = f"use [HOST:]PORT, e.g. {WEB_PORT} (127.0.0.1), 0.0.0.0:{WEB_PORT} or 0 (any)"
        raise ConfigError(option, value, allowed) from None


# --- Gaggle-mode options ----------------------------------------------------------------------
def port(option: str, value: object) -> int:
    try:
        number = int(str(value))
    except ValueError:
        number = -1
    if not 1 <= number <= 65535:
        raise ConfigError(option, value, "use a port number from 1 to 65535")
    return number


def host_name(option: str, value: object) -> str:
    text = str(value).strip()
    if not text or "/" in text or " " in text:
        raise ConfigError(option, value, "use a host name or IP address, e.g. 127.0.0.1")
    return text


def processes(option: str, value: object) -> int:
    """A number of worker processes, or ``auto``: one per CPU."""
    if str(value).strip().lower() == "auto":
        return os.cpu_count() or 1
    try:
        count = int(str(value))
    except ValueError:
        count = 0
    if count < 1:
        raise ConfigError(option, value, "use a whole number ≥ 1 or auto (one per CPU)")
    return count


def join_timeout(option: str, value: object) -> float:
    try:
        seconds = float(str(value))
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 86400:
        raise ConfigError(option, value, "use seconds > 0 (at most a day), e.g. 60")
    return seconds


def text(option: str, value: object) -> str:
    return str(value)


def pem(option: str, value: object) -> str:
    """A PEM file's path, read now: a bad file is bad input before anything connects."""
    name = str(value)
    try:
        with open(name, "rb") as file:
            content = file.read()
    except OSError as error:
        raise ConfigError(option, value, f"a readable PEM file ({error.strerror})") from None
    if b"-----BEGIN " not in content:
        raise ConfigError(option, value, "a PEM file (it has no -----BEGIN line)")
    return name


# --- --test-plan: USERS,DURATION or RATE/s,DURATION stages --------------------------------------
PLAN_FORM = (
    "use USERS,DURATION stages separated by ';', e.g. 10,1m;10,5m;0,30s (or an open model's "
    "RATE/s,DURATION stages, e.g. 100/s,1m;500/s,5m;0/s,30s)"
)
_PLAN_USERS = re.compile(r"^\d+$")
_PLAN_RATE = re.compile(r"^(\d+(?:\.\d+)?)/s$")


def _stage(option: str, text: str) -> PlanStage | None:
    """One stage's text read, or None when it is malformed."""
    where, comma, duration = text.partition(",")
    if not comma:
        return None
    try:
        seconds = parse_duration(option, duration.strip())
    except ConfigError:
        return None
    where = where.strip()
    if _PLAN_USERS.match(where):
        return PlanStage(int(where), seconds)
    rate = _PLAN_RATE.match(where)
    return PlanStage(0, seconds, float(rate.group(1))) if rate else None


def parse_stages(option: str, value: object) -> tuple[PlanStage, ...]:
    """Every stage of a plan's text, or ConfigError naming the first bad stage."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(option, value, PLAN_FORM)
    stages: list[PlanStage] = []
    for number, text in enumerate(value.strip().rstrip(";").split(";"), start=1):
        stage = _stage(option, text.strip())
        if stage is None:
            raise ConfigError(
                option,
                value,
                PLAN_FORM,
                f"{option}: stage {number} {text.strip()!r} of {value!r} is not allowed; "
                f"{PLAN_FORM} (USERS a whole number ≥ 0, RATE a number ≥ 0, DURATION such as 30s, "
                "1m, 1h30m, 0.5s or seconds)",
            )
        if stages and (stage.rate is None) != (stages[0].rate is None):
            kinds = ("users", "rates") if stages[0].rate is None else ("rates", "users")
            raise ConfigError(
                option,
                value,
                PLAN_FORM,
                f"{option}: stage {number} {text.strip()!r} of {value!r} is not allowed; the "
                f"plan's first stage gives {kinds[0]} and this one {kinds[1]}: a plan is all "
                "USERS,DURATION stages (closed model) or all RATE/s,DURATION stages (open model)",
            )
        stages.append(stage)
    return tuple(stages)


def plan_text(option: str, value: object) -> str:
    """The converter of ``--test-plan``: the plan checked, in its canonical text."""
    return canonical(parse_stages(option, value))
