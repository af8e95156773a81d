"""The run configuration model: one validated value per option, whatever set it.

Options come from three places, in rising priority: built-in defaults, ``Attack.set_default``
(the seed's ``GooseDefault``), and the command line. Each is converted and checked by the same
function, so a bad value gets the same message (option, value, what is allowed) whether it came
from a flag, code, or a LoadTest spec that the operator validates with this model. RunConfig's
fields are the run options' one declaration (``options.fields``): a new option is a field here
plus what it does; its flag, ``Default`` key, converter and README row follow.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from gaggle.errors import ConfigError
from gaggle.kits import METRICS_PORT
from gaggle.load import peak_users
from gaggle.metrics import NAMES_LIMIT, Threshold, parse_threshold
from gaggle.options.conflicts import check_baseline_rules, check_load_model, check_shares
from gaggle.options.converters import (
    DEBUG_FORMATS,
    DEFAULT_HTTP_CLIENT,
    HTTP_CLIENTS,
    LATENCIES,
    NAMES_LIMIT_MAX,
    NAMES_LIMIT_WHY,
    REQUESTS_FORMATS,
    SCHEDULERS,
    STOP_TIMEOUT_DEFAULT,
    THROTTLE_MAX,
    THROTTLE_WHY,
    optional,
    parse_duration,
    path,
    report_paths,
    status_interval,
    stop_timeout,
    text,
    thresholds,
    validate_bind,
    web_bind,
    whole,
)
from gaggle.options.fields import ADVANCED, METRICS, OPERATOR, option, options_of
from gaggle.options.load import LoadOptions

__all__ = ["CONVERTERS", "RUN_OPTIONS", "RunConfig", "build_config"]


@dataclass(frozen=True, slots=True)
class RunConfig(LoadOptions):
    """One validated value per run option. Each field is the option's one declaration (see
    ``options.fields``): the command line, ``set_default``, the converters and README come from it.
    The host and the load model's options come first, from ``LoadOptions``."""

    stop_timeout: float = option(
        "--stop-timeout",
        default=STOP_TIMEOUT_DEFAULT,
        convert=stop_timeout,
        metavar="TIME",
        help="after -t, Ctrl-C, SIGTERM or a stop, users get TIME to finish their request and "
        "on_stop tasks, then are cancelled (default: 5s; 0: at once)",
        doc="when the run stops (`-t`, the first Ctrl-C, SIGTERM, `/api/stop`), requests in "
        "flight and running tasks get TIME, then are cancelled and counted "
        "[abandoned](#what-gaggle-counts) (default: `5s`, at most `1h`; `0`: cancel at once)",
        spec="stopTimeout",
    )
    log_level: int = option(
        "-g",
        "--log-level",
        default=0,
        action="count",
        per_worker="same",
        help="log file level (-g, -gg)",
        doc="log file level (`-g` info, `-gg` debug)",
    )
    log_file: str | None = option(
        "-L",
        "--log-file",
        default=None,
        convert=path,
        metavar="NAME",
        per_worker="numbered",
        help="write the log to this file",
        doc="the log file (default `gaggle.log` when `-g` is given)",
    )
    verbose: int = option(
        "-v",
        "--verbose",
        default=0,
        action="count",
        per_worker="same",
        help="console level (-v, -vv)",
        doc="console log level (`-v` info, `-vv` debug); logs go to stderr",
    )
    running_metrics: float = option(
        "--running-metrics",
        default=0.0,
        convert=parse_duration,
        group=METRICS,
        metavar="TIME",
        help="print tables every TIME",
        doc="print the tables every TIME while running",
    )
    no_reset_metrics: bool = option(
        "--no-reset-metrics",
        default=False,
        action="store_true",
        group=METRICS,
        help="keep metrics from the hatching phase and time the run from its start",
        doc="keep the hatching phase in the metrics; the run time counts from the first user",
        spec="resetMetrics",
    )
    no_metrics: bool = option(
        "--no-metrics",
        default=False,
        action="store_true",
        group=METRICS,
        help="do not track metrics",
    )
    no_task_metrics: bool = option(
        "--no-task-metrics",
        default=False,
        action="store_true",
        group=METRICS,
        help="do not track task metrics",
    )
    only_summary: bool = option(
        "--only-summary",
        default=False,
        action="store_true",
        group=METRICS,
        help="print only the final summary",
        doc="print only the final tables",
    )
    no_live: bool = option(
        "--no-live",
        default=False,
        action="store_true",
        group=METRICS,
        per_worker="same",
        help="no live panel on a terminal and no status lines elsewhere",
        doc="no [live view](#the-live-view-and-the-status-line) on a terminal, no status lines "
        "elsewhere",
    )
    status_every: float = option(
        "--status-every",
        default=10.0,
        convert=status_interval,
        group=METRICS,
        metavar="TIME",
        per_worker="same",
        help="when stdout is not a terminal, and on a worker: a status line every TIME "
        "(default: 10s)",
        doc="when stdout is not a terminal, and on a worker: a status line every TIME (default: "
        "`10s`, at least `1s`)",
    )
    requests_file: str | None = option(
        "-m",
        "--requests-file",
        default=None,
        convert=path,
        group=METRICS,
        metavar="NAME",
        per_worker="numbered",
        help="log every request to this file",
        doc="log every request to this file ([the requests log](#what-a-run-does-and-prints))",
    )
    requests_format: str = option(
        "--requests-format",
        default="json",
        choices=REQUESTS_FORMATS,
        group=METRICS,
        per_worker="same",
        help="the requests log's format (default: json)",
    )
    debug_file: str | None = option(
        "-d",
        "--debug-file",
        default=None,
        convert=path,
        group=METRICS,
        metavar="NAME",
        per_worker="numbered",
        help="write the debug log to this file",
    )
    debug_format: str = option(
        "--debug-format",
        default="json",
        choices=DEBUG_FORMATS,
        group=METRICS,
        per_worker="same",
        help="the debug log's format (default: json)",
    )
    no_debug_body: bool = option(
        "--no-debug-body",
        default=False,
        action="store_true",
        group=METRICS,
        per_worker="same",
        help="leave response bodies out of the debug log",
    )
    status_codes: bool = option(
        "--status-codes",
        default=False,
        action="store_true",
        group=METRICS,
        help="show a status code table",
        doc="add a status-code table",
        spec="statusCodes",
    )
    request_names_limit: int = option(
        "--request-names-limit",
        default=NAMES_LIMIT,
        convert=whole(1, NAMES_LIMIT_MAX, NAMES_LIMIT_WHY),
        group=METRICS,
        metavar="N",
        help=f"past N distinct request names: one warning, and the tables and /metrics show the "
        f"N busiest plus '(other names)' (default: {NAMES_LIMIT})",
        doc="past N distinct request names, [one warning](#many-request-names) names their "
        "pattern; the console tables, the LoadTest status and `/metrics` show the N busiest and "
        f"one `(other names)` row (default `{NAMES_LIMIT}`, at most `{NAMES_LIMIT_MAX:,}`); the "
        "JSON and HTML reports keep every name",
    )
    latency: str = option(
        "--latency",
        default="intended",
        choices=LATENCIES,
        group=METRICS,
        help="time an arrival's (or paced task's) first request from its intended start "
        "(default) or from its sending: service",
        doc="`intended` (default): an arrival's or `pacing()` task's first request is timed "
        "from when it was due, so a stall shows (wrk2); `service`: from its sending",
    )
    throttle_requests: int = option(
        "--throttle-requests",
        default=0,  # 0: no throttle
        convert=whole(1, THROTTLE_MAX, THROTTLE_WHY),
        group=ADVANCED,
        metavar="N",
        help="at most N requests per second in all",
        spec="throttleRequests",
    )
    sticky_follow: bool = option(
        "--sticky-follow",
        default=False,
        action="store_true",
        group=METRICS,
        help="after a redirect of the base URL, send later requests there",
        doc="after a redirect to another origin, the user sends later requests there",
    )
    scheduler: str = option(
        "--scheduler",
        default="round-robin",
        choices=SCHEDULERS,
        group=ADVANCED,
        help="how task sets go to users",
        doc="how task sets are allocated to users (weights kept)",
    )
    http_client: str = option(
        "--http-client",
        default=DEFAULT_HTTP_CLIENT,
        choices=HTTP_CLIENTS,
        group=ADVANCED,
        help=f"the HTTP library (default: {DEFAULT_HTTP_CLIENT})",
        doc=f"the HTTP library (default `{DEFAULT_HTTP_CLIENT}`: the event loop's sockets with "
        "llhttp parsing; `reqwest` is Rust's reqwest via pyreqwest); a task set may set "
        '`client = "aiohttp"` for its own users. All three pass one behaviour suite: same '
        "records, redirects (`final_url`), cookies, errors; custom CAs from `SSL_CERT_FILE`",
    )
    metrics_bind: str | None = option(
        "--metrics-bind",
        default=None,
        convert=optional(validate_bind),
        group=ADVANCED,
        metavar="HOST:PORT",
        per_worker="own",  # the manager's endpoint; a worker may serve its own
        help=f"serve Prometheus /metrics and /summary (manager default: 0.0.0.0:{METRICS_PORT})",
        doc="serve `/metrics`, `/summary` ([below](#prometheus)), the control API and the live "
        f"page (a manager's default: `0.0.0.0:{METRICS_PORT}`; `[::]:{METRICS_PORT}` is every "
        "address, IPv4 and IPv6)",
        spec=OPERATOR,
    )
    control_token: str = option(
        "--control-token",
        default="",  # then $GAGGLE_CONTROL_TOKEN; a manager's: its --gaggle-token (gaggle.cli)
        convert=text,
        group=ADVANCED,
        metavar="TOKEN",
        per_worker="own",  # the manager's secret: never sent to its workers
        help="the bearer token the control API on --metrics-bind requires (default: "
        "$GAGGLE_CONTROL_TOKEN; a manager: its --gaggle-token)",
        doc="the bearer token the [control API](#changing-a-running-test) on `--metrics-bind` "
        "requires (default `$GAGGLE_CONTROL_TOKEN`; a manager: its `--gaggle-token`); without "
        "one the API answers only on a loopback bind",
        spec=OPERATOR,
    )
    web: str | None = option(
        "--web",
        default=None,
        convert=optional(web_bind),
        group=METRICS,
        metavar="[HOST:]PORT",
        per_worker="own",  # the manager's page; a worker has none
        help="serve a live page of the run, with controls (PORT alone: on 127.0.0.1)",
        doc="serve a [live page](#the-live-web-page) of the run, with controls (`PORT` alone: "
        "on `127.0.0.1`); `--metrics-bind`'s port serves it too",
    )
    report_file: tuple[str, ...] = option(
        "-R",
        "--report-file",
        default=(),  # .html/.htm, .json, .md or .xml, by extension; one file per -R
        convert=report_paths,
        action="append",
        group=METRICS,
        metavar="NAME",
        help="write a report: NAME.html (charts), NAME.json, NAME.md (a CI job summary) or "
        "NAME.xml (JUnit); repeatable",
        doc="write a report at the end: `NAME.html` (charts, offline), `NAME.json`, `NAME.md` "
        "(a CI job summary) or `NAME.xml` (JUnit); repeatable, one file each "
        "([below](#reports))",
    )
    thresholds: tuple[str, ...] = option(
        "--threshold",
        default=(),  # pass/fail rules, canonical text (gaggle.metrics.thresholds)
        convert=thresholds,
        action="append",
        group=ADVANCED,
        metavar="RULE",
        help="pass/fail rule, e.g. 'p95(GET /) < 300' (repeatable; a failed one exits 3)",
        doc="a pass/fail rule (repeatable); the run exits 3 when one fails (below)",
        spec="thresholds",
    )
    baseline: str | None = option(
        "--baseline",
        default=None,  # read (and checked) by the process that judges: standalone or manager
        convert=path,
        group=ADVANCED,
        metavar="FILE",
        help="compare with a previous run's JSON report (-R NAME.json; or Goose's): the tables "
        "and reports show the changes; rules may say 'p95 < baseline + 10%%'",
        doc="compare the run with a previous run's JSON report (`-R NAME.json`, or Goose "
        "0.19's): the tables and reports show the changes, and rules may name the baseline "
        "(`p95 < baseline + 10%`; [below](#a-baseline-to-beat))",
        spec=OPERATOR,  # a LoadTest's spec.baseline: the operator mounts the run's report
    )

    @property
    def threshold_rules(self) -> list[Threshold]:
        return [parse_threshold(text) for text in self.thresholds]


RUN_OPTIONS = options_of(RunConfig)


# field name → (flag shown in messages, converter)
CONVERTERS: dict[str, tuple[str, Callable[[object], Any]]] = {
    entry.name: (entry.flag, entry.check) for entry in RUN_OPTIONS
}


def build_config(*layers: Mapping[str, object], processes: int | None = None) -> RunConfig:
    """Merge layers (later wins; a None value means "not set") and validate every value.
    ``processes``: how many share the run's load, when the caller knows (1 standalone, a
    gaggle's workers): the users and arrivals are checked against what they hold
    (``conflicts.check_shares``). None checks each value against its own bound only: what a
    worker reads from its manager is the whole run's."""
    given = [{k: v for k, v in layer.items() if v is not None} for layer in layers]
    check_load_model(given)
    merged: dict[str, object] = {}
    for layer in given:
        merged.update(layer)
    values: dict[str, Any] = {}
    for name, raw in merged.items():
        if name not in CONVERTERS:
            raise ConfigError("option", name, "use one of: " + ", ".join(sorted(CONVERTERS)))
        values[name] = CONVERTERS[name][1](raw)
    config = RunConfig(**values)
    check_baseline_rules(config.threshold_rules, config.baseline)
    if "max_users" in merged and not config.open_model:
        raise ConfigError(
            "--max-users",
            merged["max_users"],
            "",
            "--max-users bounds an open model's pool: give it with --arrival-rate or a plan of "
            "RATE/s stages (closed models say their users with -u or USERS stages)",
        )
    if config.open_model:  # the users a report and result name: the pool's bound
        config = replace(config, users=config.max_users)
    elif config.test_plan:  # the users a plan's report and result name: its peak
        config = replace(config, users=peak_users(config.plan_stages))
    elif config.users == 0:
        config = replace(config, users=os.cpu_count() or 1)
    if processes is not None:
        try:
            check_shares(config, processes)
        except ConfigError as error:  # named with the value as the user gave it
            typed = [v for k, v in merged.items() if CONVERTERS[k][0] == error.option]
            value = typed[0] if typed else error.value
            raise ConfigError(error.option, value, error.allowed) from None
    return config
