"""The command-line options of a run, with Goose 0.10's names and meanings.

One parser serves ``gaggle run FILE``, ``Attack.execute()`` and (later) the operator's check of a
LoadTest's ``args``. Every option defaults to "not given" so that ``set_default`` values are only
overridden by what the user actually typed; values are checked by ``config.build_config``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import NoReturn

from gaggle.config import (
    DEBUG_FORMATS,
    DEFAULT_HTTP_CLIENT,
    HTTP_CLIENTS,
    REQUESTS_FORMATS,
    SCHEDULERS,
    ConfigError,
)
from gaggle.ports import GRPC_PORT, METRICS_PORT

# Flags that are parsed now so that they are never mistaken for typos, and refused until the
# feature lands: (flags, takes a value, what it is for).
RESERVED: tuple[tuple[tuple[str, ...], bool, str], ...] = ()


def add_run_options(parser: argparse.ArgumentParser) -> None:
    no = argparse.SUPPRESS
    group = parser.add_argument_group("run")
    group.add_argument(
        "-H", "--host", default=no, help="host to load test, e.g. http://127.0.0.1:8080"
    )
    group.add_argument(
        "-u", "--users", default=no, help="concurrent users (default: number of CPUs)"
    )
    group.add_argument(
        "-r", "--hatch-rate", default=no, help="users started per second (default: 1)"
    )
    group.add_argument("-t", "--run-time", default=no, help="stop after 30s, 20m, 3h, 1h30m…")
    group.add_argument(
        "-l", "--list", action="store_true", help="list task sets and tasks, then exit"
    )
    group.add_argument(
        "-g", "--log-level", action="count", default=no, help="log file level (-g, -gg)"
    )
    group.add_argument("-L", "--log-file", default=no, help="write the log to this file")
    group.add_argument(
        "-v", "--verbose", action="count", default=no, help="console level (-v, -vv)"
    )
    metrics = parser.add_argument_group("metrics")
    metrics.add_argument(
        "--running-metrics", default=no, metavar="TIME", help="print tables every TIME"
    )
    for flag, text in (
        (
            "--no-reset-metrics",
            "keep metrics from the hatching phase and time the run from its start",
        ),
        ("--no-metrics", "do not track metrics"),
        ("--no-task-metrics", "do not track task metrics"),
        ("--only-summary", "print only the final summary"),
        ("--no-debug-body", "leave response bodies out of the debug log"),
        ("--status-codes", "show a status code table"),
        ("--sticky-follow", "after a redirect of the base URL, send later requests there"),
    ):
        metrics.add_argument(flag, action="store_true", default=no, help=text)
    metrics.add_argument("-m", "--requests-file", default=no, help="log every request to this file")
    metrics.add_argument(
        "--requests-format", default=no, help=f"{'|'.join(REQUESTS_FORMATS)} (default: json)"
    )
    metrics.add_argument("-d", "--debug-file", default=no, help="write the debug log to this file")
    metrics.add_argument(
        "--debug-format", default=no, help=f"{'|'.join(DEBUG_FORMATS)} (default: json)"
    )
    metrics.add_argument(
        "-R", "--report-file", default=no, help="write a report: NAME.html (charts) or NAME.json"
    )
    advanced = parser.add_argument_group("advanced")
    advanced.add_argument(
        "--throttle-requests", default=no, metavar="N", help="at most N requests per second in all"
    )
    advanced.add_argument(
        "--scheduler", default=no, help=f"{'|'.join(SCHEDULERS)}: how task sets go to users"
    )
    advanced.add_argument(
        "--http-client",
        default=no,
        help=f"{'|'.join(HTTP_CLIENTS)} (default: {DEFAULT_HTTP_CLIENT})",
    )
    gaggle = parser.add_argument_group("gaggle (one manager, N workers)")
    gaggle.add_argument("--manager", action="store_true", default=no, help="run as the manager")
    gaggle.add_argument("--expect-workers", default=no, metavar="N", help="workers to wait for")
    gaggle.add_argument(
        "--no-hash-check", action="store_true", default=no, help="let workers with other rules join"
    )
    gaggle.add_argument(
        "--manager-bind-host",
        default=no,
        metavar="HOST",
        help="manager listens on (default: 0.0.0.0)",
    )
    gaggle.add_argument(
        "--manager-bind-port",
        default=no,
        metavar="PORT",
        help=f"manager port (default: {GRPC_PORT})",
    )
    gaggle.add_argument(
        "--processes",
        default=no,
        metavar="N",
        help="a local manager and N worker processes (auto: CPUs)",
    )
    gaggle.add_argument("--worker", action="store_true", default=no, help="run as a worker")
    gaggle.add_argument(
        "--manager-host", default=no, metavar="HOST", help="manager to join (default: 127.0.0.1)"
    )
    gaggle.add_argument(
        "--manager-port", default=no, metavar="PORT", help=f"its port (default: {GRPC_PORT})"
    )
    gaggle.add_argument(
        "--join-timeout", default=no, metavar="SECONDS",
        help="worker: keep trying to reach the manager this long (default: 60)",
    )  # fmt: skip
    gaggle.add_argument(
        "--leave-on-sigterm", action="store_true", default=no,
        help="worker: SIGTERM makes this worker leave; the gaggle goes on (e.g. a deleted pod)",
    )  # fmt: skip
    gaggle.add_argument(
        "--gaggle-token", default=no, metavar="TOKEN",
        help="shared secret workers must present (default: $GAGGLE_TOKEN)",
    )  # fmt: skip
    gaggle.add_argument("--tls-cert", default=no, metavar="PEM", help="TLS certificate chain")
    gaggle.add_argument("--tls-key", default=no, metavar="PEM", help="its private key")
    gaggle.add_argument(
        "--tls-ca", default=no, metavar="PEM",
        help="CA to verify the peer (on the manager: require worker certificates)",
    )  # fmt: skip
    advanced.add_argument(
        "--threshold", dest="thresholds", action="append", default=no, metavar="RULE",
        help="pass/fail rule, e.g. 'p95(GET /) < 300' (repeatable; a failed one exits 3)",
    )  # fmt: skip
    advanced.add_argument(
        "--metrics-bind", default=no, metavar="HOST:PORT",
        help=f"serve Prometheus /metrics and /summary (manager default: 0.0.0.0:{METRICS_PORT})",
    )  # fmt: skip
    reserved = parser.add_argument_group("reserved (not yet available)")
    for flags, takes_value, _ in RESERVED:
        if takes_value:
            reserved.add_argument(*flags, default=no, help=argparse.SUPPRESS)
        else:
            reserved.add_argument(*flags, action="store_true", default=no, help=argparse.SUPPRESS)


def given_options(namespace: argparse.Namespace) -> dict[str, object]:
    """The config values the user typed (names as in RunConfig); rejects reserved flags."""
    values = dict(vars(namespace))
    for flags, _, feature in RESERVED:
        dest = flags[-1].lstrip("-").replace("-", "_")
        if dest in values:
            raise ConfigError(
                flags[-1], values[dest], f"{feature} is not available in this version yet"
            )
    for key in ("list", "command", "file", "func"):
        values.pop(key, None)
    return values


GAGGLE_KEYS = (
    "processes",
    "manager",
    "worker",
    "expect_workers",
    "no_hash_check",
    "manager_bind_host",
    "manager_bind_port",
    "manager_host",
    "manager_port",
    "join_timeout",
    "leave_on_sigterm",
    "gaggle_token",
    "tls_cert",
    "tls_key",
    "tls_ca",
)


def split_gaggle_options(values: dict[str, object]) -> dict[str, object]:
    """Take the Gaggle-mode flags out of ``values`` (they configure a role, not a run)."""
    return {key: values.pop(key) for key in GAGGLE_KEYS if key in values}


class _RaisingParser(argparse.ArgumentParser):
    """A parser that raises ConfigError instead of printing usage and exiting (the operator
    checks a LoadTest's ``args`` with it)."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError("args", None, message, message=message)


def parse_run_args(
    argv: Sequence[str],
    prog: str = "gaggle",
    *,
    raise_errors: bool = False,
    gaggle_flags: bool = False,
) -> tuple[dict[str, object], bool]:
    """Parse options for ``Attack.execute()``: (given config values, whether --list was asked).
    ``raise_errors``: a bad flag raises ConfigError instead of exiting with usage;
    ``gaggle_flags``: Gaggle-mode flags are returned among the values instead of refused."""
    parser_class = _RaisingParser if raise_errors else argparse.ArgumentParser
    parser = parser_class(prog=prog, description="Run a Gaggle load test.")
    add_run_options(parser)
    namespace = parser.parse_args(list(argv))
    listing = bool(namespace.list)
    values = given_options(namespace)
    if not gaggle_flags:
        for key, value in split_gaggle_options(values).items():
            flag = "--" + key.replace("_", "-")
            raise ConfigError(flag, value, "Gaggle mode runs with `gaggle run FILE`")
    return values, listing
