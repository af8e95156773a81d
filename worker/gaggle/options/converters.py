"""What each option accepts: a converter takes the option's flag (for the message) and a value —
a flag's text, a Python value from ``set_default`` or a LoadTest spec's — and returns it checked,
or raises ConfigError with the one line the user sees. Run options and Gaggle-mode options use the
same kind of converter, named in the option table next to each flag.
"""

from __future__ import annotations

import math
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
# by file extension; .md fits a CI job summary, .xml is JUnit for CI test reporters
REPORT_FORMATS = {
    ".html": "html",
    ".htm": "html",
    ".json": "json",
    ".md": "markdown",
    ".xml": "junit",
}


# --- bounds: the most each number may be -----------------------------------------------------
# Every number a user types — a flag, ``set_default``, the control API, a LoadTest — is finite and
# has a ceiling here: one value beyond what a process holds froze the loop for good (review D2:
# `-u 1000000 -r 1000000`, `--arrival-rate 1e9`, a plan of 10^20 users). Measured roughly on this
# project's 2-core machine (December 2026, httptools; README's Performance has the rest).
#
# Per process: Gaggle mode splits these over its workers (each hatches its share of the users
# and of the pool, and takes every n-th arrival), so a gaggle holds this much times its workers.
# The converters check only the whole run's ceiling (a worker reads the manager's whole-run
# values with them); ``conflicts.check_shares`` checks the load against the processes sharing it
# wherever their number is known: 1 standalone, --processes N, a manager's --expect-workers, a
# LoadTest's workers.replicas, the workers a manager runs (the control API).
USERS_PER_PROCESS = 25_000
USERS_WHY = (
    "starting a user takes the loop ~35 µs (100,000 at once stalled it 3.5 s), an idle one holds "
    "14-62 KiB and a connection, and a machine has ~28,000 ports to one target"
)
ARRIVALS_PER_PROCESS = 100_000  # a second
ARRIVALS_WHY = (
    "one loop starts ~7,000 arrivals a second with a request each and drops the rest at ~1.3 µs "
    "each: 100,000/s of drops take an eighth of it, 1,000,000/s never let it catch up"
)
# The whole run: what one process takes whole (each worker gets the manager's value), or what
# the manager's one loop paces for all its workers.
MAX_WORKERS = 1_000  # --expect-workers, a LoadTest's workers.replicas
WORKERS_WHY = (
    "the manager folds every worker's deltas on its one loop: 100 workers of 200 request names "
    "took 6.5 % of a core"
)
USERS_PER_RUN = 1_000_000  # -u, --max-users, a plan's users: in a gaggle, over its workers
USERS_PER_RUN_WHY = (
    "a gaggle's manager keeps a slot per user and moves users at ~0.2 µs per user and worker "
    "(100,000 over 100 workers: 2.3 s of its loop)"
)
ARRIVALS_PER_RUN = ARRIVALS_PER_PROCESS * MAX_WORKERS  # --arrival-rate, a plan's rates
ARRIVALS_PER_RUN_WHY = f"{ARRIVALS_PER_PROCESS:,} a second for each of {MAX_WORKERS:,} workers"
HATCH_RATE_MAX = USERS_PER_RUN  # users started a second (-u's split over the workers)
HATCH_WHY = "every user a run may have, started within a second: a faster rate is no different"
SECONDS_MAX = 365 * 86_400  # -t, a plan's stages, --running-metrics, --status-every
SECONDS_WHY = (
    "a year: arrival k's instant k/R stays an exact float for a year even at a gaggle's highest "
    "rate (3.2·10^15 arrivals, under 2^53)"
)
ITERATIONS_MAX = 1_000_000_000  # --iterations: a user's passes
ITERATIONS_WHY = "a billion passes: at a millisecond each, 11 days of one user; -t ends longer runs"
THROTTLE_MAX = 1_000_000  # --throttle-requests: each process applies it whole
THROTTLE_WHY = "60 times what one core sends (~15,700 requests a second): above it nothing waits"
NAMES_LIMIT_MAX = 100_000  # --request-names-limit
NAMES_LIMIT_WHY = (
    "100,000 names are some 2 million /metrics series and a table nobody reads; the JSON and "
    "HTML reports keep every name whatever the limit"
)
JOIN_TIMEOUT_MAX = 86_400  # --join-timeout, a LoadTest's startPolicy.readyTimeoutSeconds
PROCESSES_PER_CPU = 4  # --processes: worker processes on this machine
PROCESSES_WHY = (
    "each is a Python process (~50 MB) with its own loop: more than a few per CPU only share them"
)


def beyond(number: float, most: float) -> bool:
    """``number`` is not a finite number ≤ ``most`` (NaN and infinities never are)."""
    if isinstance(number, int):  # exact, and a huge int does not fit a float
        return number > most
    return not (math.isfinite(number) and number <= most)


def refused(option: str, value: object, allowed: str) -> ConfigError:
    """The refusal of ``value``; an int too long to print (``set_default(USERS, 10**5000)``)
    shows as its length."""
    if isinstance(value, int) and value.bit_length() > 1000:
        digits = int(value.bit_length() * math.log10(2)) + 1
        message = f"{option}: a whole number of ~{digits:,} digits is not allowed; {allowed}"
        return ConfigError(option, value, allowed, message)
    return ConfigError(option, value, allowed)


def most_text(most: float, why: str, unit: str = "") -> str:
    """``≤ 25,000 users (why)``: the bound and its reason, for a refusal's *allowed*."""
    shown = f"{most:,}" if float(most).is_integer() else f"{most:g}"
    return f"≤ {shown}{' ' + unit if unit else ''} ({why})"


def optional(convert: Callable[[str, object], T]) -> Callable[[str, object], T | None]:
    """``convert``, letting None (not set) through."""

    def checked(option: str, value: object) -> T | None:
        return None if value is None else convert(option, value)

    return checked


# --- run options ------------------------------------------------------------------------------
_DURATION = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?$")
DURATION_FORM = "use a duration such as 30s, 20m, 3h, 1h30m, 0.5s or a number of seconds ≥ 0"
DURATION_MOST = f"use a duration {most_text(SECONDS_MAX, SECONDS_WHY, 's')}"


def _seconds(value: object) -> float | None:
    """A duration's seconds as written; None when it is no duration. NaN, infinities and huge
    values come back as they are, for the caller to refuse."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):  # beyond the bound it is refused; a huge one does not fit a float
        return float(value) if abs(value) <= SECONDS_MAX else math.inf if value > 0 else -math.inf
    if isinstance(value, float):
        return value
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        match = _DURATION.match(text)
        if not text or match is None:
            return None
        parts = {k: float(v) for k, v in match.groupdict(default="0").items()}
        return parts["h"] * 3600 + parts["m"] * 60 + parts["s"]


def parse_duration(option: str, value: object) -> float:
    """``30s``, ``20m``, ``3h``, ``1h30m`` or a number of seconds, up to a year."""
    seconds = _seconds(value)
    if seconds is None or not seconds >= 0:  # NaN is not ≥ 0
        raise refused(option, value, DURATION_FORM)
    if beyond(seconds, SECONDS_MAX):
        raise refused(option, value, DURATION_MOST)
    return seconds


def status_interval(option: str, value: object) -> float:
    """A duration of at least one second: the live view reads its figures once a second."""
    seconds = parse_duration(option, value)
    if seconds < 1:
        raise ConfigError(option, value, "use a duration of at least 1s, e.g. 10s or 1m")
    return seconds


STOP_TIMEOUT_DEFAULT = 5.0  # seconds: a few (k6's gracefulStop and Locust's --stop-timeout alike)
STOP_TIMEOUT_MAX = 3600
STOP_TIMEOUT_WHY = "an hour: a stop that takes longer is a hang, not a stop"


def stop_timeout(option: str, value: object) -> float:
    """How long a stopping run waits for its users: a duration from 0 (cancel at once) to an
    hour."""
    seconds = parse_duration(option, value)
    if seconds > STOP_TIMEOUT_MAX:
        most = most_text(STOP_TIMEOUT_MAX, STOP_TIMEOUT_WHY, "s")
        raise refused(option, value, f"use a duration {most}, e.g. 5s, or 0 to cancel at once")
    return seconds


def whole(minimum: int, most: int | None = None, why: str = "") -> Callable[[str, object], int]:
    """A whole number ≥ ``minimum`` (and ≤ ``most``, for the reason ``why``), from an int or its
    text."""

    def convert(option: str, value: object) -> int:
        allowed = f"use a whole number ≥ {minimum}"
        if isinstance(value, bool):
            raise ConfigError(option, value, allowed)
        try:  # a text of more than 4,300 digits is a ValueError too
            number = int(str(value).strip()) if not isinstance(value, int) else value
        except ValueError:
            raise ConfigError(option, value, allowed) from None
        if number < minimum:
            raise refused(option, value, allowed)
        if most is not None and number > most:
            raise refused(option, value, f"{allowed} and {most_text(most, why)}")
        return number

    return convert


def _positive(option: str, value: object, most: float, what: str, why: str) -> float:
    """A finite number > 0 and ≤ ``most``; ``what`` says in the refusal what it counts."""
    allowed = f"use a number > 0 ({what})"
    try:
        number = float(str(value).strip()) if not isinstance(value, bool) else -1.0
    except ValueError:  # not a number, or an int of more than 4,300 digits
        raise refused(option, value, allowed) from None
    if not number > 0:  # NaN is not > 0
        raise refused(option, value, allowed)
    if beyond(number, most):
        raise refused(option, value, f"{allowed} and {most_text(most, why)}")
    return number


def rate(option: str, value: object) -> float:
    """Users started per second: a finite number > 0."""
    what = "users per second; fractions allowed"
    return _positive(option, value, HATCH_RATE_MAX, what, HATCH_WHY)


def arrival_rate(option: str, value: object) -> float:
    """An open model's arrivals: iterations started per second, a finite number > 0 (the whole
    run's: a gaggle's workers share it)."""
    what = "iterations started per second, e.g. 50 or 0.5"
    return _positive(option, value, ARRIVALS_PER_RUN, what, ARRIVALS_PER_RUN_WHY)


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


def report_paths(option: str, value: object) -> tuple[str, ...]:
    """One report file name or several (``-R`` is repeatable: one file per format)."""
    names = value if isinstance(value, list | tuple) else [value]
    return tuple(name for name in (report_path(option, item) for item in names) if name)


# a URL's host[:port]: a bracketed IPv6 address (a zone, RFC 6874) or a name with no delimiters
_HOST_PORT = re.compile(r"(\[[0-9A-Fa-f:.]+(%25[\w.~-]+)?\]|[^\[\]:@/?#\s]+)(:[0-9]*)?")


def validate_host(option: str, value: object) -> str:
    allowed = "use an http:// or https:// URL with a host name, e.g. http://127.0.0.1:8080"
    if not isinstance(value, str):
        raise ConfigError(option, value, allowed)
    text = value.strip()
    if any(ord(char) < 33 or ord(char) == 127 for char in text):  # urlsplit drops tabs
        raise ConfigError(option, value, allowed)
    try:  # ValueError: a bad IPv6 address ("http://[::1"), a bad port
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigError(option, value, allowed) from None
    host_port = parts.netloc.rpartition("@")[2]
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(option, value, allowed)
    if not _HOST_PORT.fullmatch(host_port):
        raise ConfigError(option, value, allowed)
    return text.rstrip("/")


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
    """A number of worker processes on this machine, a few per CPU at most, or ``auto``: one
    per CPU."""
    cpus = os.cpu_count() or 1
    if str(value).strip().lower() == "auto":
        return cpus
    try:
        count = int(str(value))
    except ValueError:
        count = 0
    if count < 1:
        raise ConfigError(option, value, "use a whole number ≥ 1 or auto (one per CPU)")
    if count > PROCESSES_PER_CPU * cpus:
        most = f"{PROCESSES_PER_CPU} per CPU, {cpus} CPUs here: {PROCESSES_WHY}"
        allowed = f"use a whole number ≥ 1 and ≤ {PROCESSES_PER_CPU * cpus} ({most}) or auto"
        raise ConfigError(option, value, allowed)
    return count


def join_timeout(option: str, value: object) -> float:
    try:
        seconds = float(str(value))
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= JOIN_TIMEOUT_MAX:  # NaN is neither
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


def _stage(text: str) -> PlanStage | str:
    """One stage's text read, or why not: "" when it is malformed, else the bound it is beyond."""
    where, comma, duration = text.partition(",")
    seconds = _seconds(duration.strip()) if comma else None
    where = where.strip()
    users, rate = _PLAN_USERS.match(where), _PLAN_RATE.match(where)
    if seconds is None or not seconds >= 0 or not (users or rate):
        return ""
    if beyond(seconds, SECONDS_MAX):
        return f"use a DURATION {most_text(SECONDS_MAX, SECONDS_WHY, 's')}"
    if users:  # 20 digits are enough to be refused: int() of 5,000 would raise
        count = int(where[:20])
        if len(where) > 20 or count > USERS_PER_RUN:
            return f"use USERS {most_text(USERS_PER_RUN, USERS_PER_RUN_WHY)}"
        return PlanStage(count, seconds)
    per_second = float(rate.group(1)) if rate else math.inf
    if beyond(per_second, ARRIVALS_PER_RUN):
        return f"use a RATE {most_text(ARRIVALS_PER_RUN, ARRIVALS_PER_RUN_WHY)}"
    return PlanStage(0, seconds, per_second)


def parse_stages(option: str, value: object) -> tuple[PlanStage, ...]:
    """Every stage of a plan's text, or ConfigError naming the first bad stage."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(option, value, PLAN_FORM)
    stages: list[PlanStage] = []
    for number, text in enumerate(value.strip().rstrip(";").split(";"), start=1):
        stage = _stage(text.strip())
        if isinstance(stage, str) and stage:  # beyond a bound
            shown = f"stage {number} {text.strip()!r} of {value!r}"
            raise ConfigError(option, value, stage, f"{option}: {shown} is not allowed; {stage}")
        if isinstance(stage, str):
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
    total = sum(stage.seconds for stage in stages)
    if beyond(total, SECONDS_MAX):
        allowed = f"use stages that last ≤ {SECONDS_MAX:,} s in all ({SECONDS_WHY})"
        message = f"{option}: {value!r} is not allowed; its stages last {total:,.0f} s; {allowed}"
        raise ConfigError(option, value, allowed, message)
    return tuple(stages)


def plan_text(option: str, value: object) -> str:
    """The converter of ``--test-plan``: the plan checked, in its canonical text."""
    return canonical(parse_stages(option, value))
