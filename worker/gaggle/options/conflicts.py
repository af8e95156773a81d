"""Every rule between run options: which load model they ask for, and the combinations that
contradict each other.

Three ways say how the load goes: ``-u``/``-r`` (with ``-t`` or ``--iterations``), a
``--test-plan`` (users or rates), and ``--arrival-rate`` (with ``-t``). Two of them in one layer
(one command line, one ``set_default`` program) are refused with one line naming both; across
layers the later one wins (a command line's ``-u`` over a program's default plan, or back). A
load shape in the test file says all of it, so any of them beside a shape is refused.
What one process holds (``converters.USERS_PER_PROCESS``…) is a rule between the load and the
role: a gaggle's workers each hold their share, so ``check_shares`` weighs the load against the
processes sharing it.
The Gaggle-mode flags have rules of their own — which go with ``--manager``, which with
``--worker``, which need each other — and ``role_from`` reads the given flags into the ``Role``
they decide under those rules.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, TypedDict

from gaggle.errors import ConfigError
from gaggle.load import LoadShape
from gaggle.metrics import Threshold
from gaggle.options.converters import (
    ARRIVALS_PER_PROCESS,
    ARRIVALS_WHY,
    USERS_PER_PROCESS,
    USERS_WHY,
)
from gaggle.options.fields import options_of
from gaggle.options.load import LoadOptions
from gaggle.options.role import ROLE_OPTIONS, Role, RoleKind

STEADY_KEYS = ("users", "hatch_rate", "run_time")  # what a --test-plan replaces
SHAPE_KEYS = (*STEADY_KEYS, "iterations", "test_plan", "arrival_rate")  # what a shape's ticks say
FLAGS = {entry.name: entry.flag for entry in options_of(LoadOptions)}  # from the declarations


def _refuse(option: str, value: object, other: str, why: str) -> ConfigError:
    return ConfigError(option, value, "", f"{option} and {FLAGS[other]} do not go together: {why}")


def _arrivals_alone(layers: list[dict[str, object]]) -> None:
    """--arrival-rate says when iterations start: users, their rate, a plan or iterations per
    user would say it too. (-t gives its run time.)"""
    open_at = max((i for i, layer in enumerate(layers) if "arrival_rate" in layer), default=-1)
    if open_at < 0:
        return
    rivals = ("users", "hatch_rate", "iterations", "test_plan")
    for index, layer in enumerate(layers):
        given = [key for key in rivals if key in layer]
        if index == open_at and given:
            raise _refuse(
                "--arrival-rate",
                layer["arrival_rate"],
                given[0],
                "the arrival rate says when iterations start (and -t how long); "
                "give one or the other",
            )
        if index < open_at:
            for key in rivals:
                layer.pop(key, None)
        elif index > open_at and given:
            for earlier in layers[: open_at + 1]:
                earlier.pop("arrival_rate", None)
            return


def _plan_or_steady(layers: list[dict[str, object]]) -> None:
    """A plan and -u/-r/-t in one layer contradict each other; across layers the later wins."""
    plan_at = max((i for i, layer in enumerate(layers) if "test_plan" in layer), default=-1)
    if plan_at < 0:
        return
    for index, layer in enumerate(layers):
        steady = [key for key in STEADY_KEYS if key in layer]
        if index == plan_at and steady:
            raise _refuse(
                "--test-plan",
                layer["test_plan"],
                steady[0],
                "the plan says the users, their rate and the run time; give one or the other",
            )
        if index == plan_at and "iterations" in layer:
            raise _refuse(
                "--test-plan",
                layer["test_plan"],
                "iterations",
                "the plan ends the run, iterations end each user; give one or the other",
            )
        if index < plan_at:
            for key in (*STEADY_KEYS, "iterations"):
                layer.pop(key, None)
        elif index > plan_at and (steady or "iterations" in layer):
            for earlier in layers[: plan_at + 1]:
                earlier.pop("test_plan", None)
            return


def check_load_model(layers: list[dict[str, object]]) -> None:
    """Refuse contradicting load options in one layer; drop the earlier layers' rivals."""
    _arrivals_alone(layers)
    _plan_or_steady(layers)


def check_shape_alone(shape: type[LoadShape], *layers: dict[str, object]) -> None:
    """A load shape says the users, their rate and the end: an option that says so too is
    refused rather than silently ignored (Locust ignores it)."""
    for key in SHAPE_KEYS:
        for layer in layers:
            if layer.get(key) is not None:
                raise ConfigError(
                    FLAGS[key],
                    layer[key],
                    "",
                    f"{FLAGS[key]} does not go with the load shape {shape.__name__}: its tick says "
                    "the users, their rate and when the run ends; leave the option out",
                )


# --- what the processes sharing a run hold ------------------------------------------------
RUN_MORE = "run more processes: --processes N, or a manager and its workers"
_SHARED = {  # what is split over a gaggle's workers: at most this much in each process
    "users": (USERS_PER_PROCESS, "users", USERS_WHY),
    "arrivals": (ARRIVALS_PER_PROCESS, "arrivals a second", ARRIVALS_WHY),
}


def share_refused(kind: str, amount: float, processes: int, more: str = RUN_MORE) -> str:
    """What is allowed when ``processes`` cannot hold ``amount`` of ``kind`` ("users" or
    "arrivals", split over them); "" when they can."""
    per_process, unit, why = _SHARED[kind]
    processes = max(1, processes)
    if amount <= per_process * processes:
        return ""
    if processes == 1:
        return f"use at most {per_process:,} {unit} in one process ({why}); {more}"
    return (
        f"use at most {per_process * processes:,} {unit} over these {processes} processes, "
        f"{per_process:,} in each ({why}); {more}"
    )


def check_baseline_rules(rules: Sequence[Threshold], baseline: str | None) -> None:
    """A regression rule (``p95 < baseline + 10%``) needs a baseline to resolve its limit."""
    if baseline:
        return
    for rule in rules:
        if rule.baseline_based:
            raise ConfigError(
                "--threshold",
                str(rule),
                "",
                f"--threshold {str(rule)!r} compares with a baseline: give --baseline FILE (a "
                "previous run's JSON report, -R NAME.json), or compare with a number",
            )


def check_shares(load: LoadOptions, processes: int, more: str = RUN_MORE) -> None:
    """Refuse a load that ``processes`` cannot hold between them: its users (``-u``, a plan's
    stages, an open model's pool) and its arrivals (``--arrival-rate``, a plan's rates) — the
    option named, as its converter would."""
    plan = load.plan_stages
    given: list[tuple[str, str, float, object]] = []  # (option, kind, amount, its value)
    if load.open_model:
        given.append(("max_users", "users", load.max_users, load.max_users))
        if plan:
            peak = max(stage.rate or 0.0 for stage in plan)
            given.append(("test_plan", "arrivals", peak, load.test_plan))
        else:
            given.append(("arrival_rate", "arrivals", load.arrival_rate, load.arrival_rate))
    elif plan:
        given.append(("test_plan", "users", max(stage.users for stage in plan), load.test_plan))
    else:
        given.append(("users", "users", load.users, load.users))
    for name, kind, amount, value in given:
        allowed = share_refused(kind, amount, processes, more)
        if allowed:
            raise ConfigError(FLAGS[name], value, allowed)


# --- the Gaggle-mode flags -----------------------------------------------------------------
_ROLE_OPTIONS = {entry.name: entry for entry in ROLE_OPTIONS}


def _value(flags: dict[str, object], name: str) -> Any:
    """A flag's value checked by its converter, or its default when it was not given."""
    entry = _ROLE_OPTIONS[name]
    return entry.check(flags[name]) if name in flags else entry.default


def _flag(name: str) -> str:
    return _ROLE_OPTIONS[name].flag


class _Security(TypedDict):
    token: str
    tls_cert: str
    tls_key: str
    tls_ca: str


def _security(flags: dict[str, object], manager: bool) -> _Security:
    """The token (flag, else $GAGGLE_TOKEN) and TLS files, checked before anything connects."""
    token = str(_value(flags, "gaggle_token") or os.environ.get("GAGGLE_TOKEN", ""))
    keys = ("tls_cert", "tls_key", "tls_ca")
    files = {key: _value(flags, key) for key in keys if flags.get(key)}
    if bool(files.get("tls_cert")) != bool(files.get("tls_key")):
        given = "tls_cert" if files.get("tls_cert") else "tls_key"
        pair = "it needs its pair: --tls-cert and --tls-key go together"
        raise ConfigError(_flag(given), flags.get(given), pair)
    if manager and files and not files.get("tls_cert"):
        raise ConfigError(
            _flag("tls_ca"), files["tls_ca"], "a TLS manager needs --tls-cert and --tls-key too"
        )
    return _Security(
        token=token,
        tls_cert=files.get("tls_cert", ""),
        tls_key=files.get("tls_key", ""),
        tls_ca=files.get("tls_ca", ""),
    )


def role_from(flags: dict[str, object]) -> Role:
    manager, worker = bool(flags.get("manager")), bool(flags.get("worker"))
    if "processes" in flags:
        if manager or worker:
            raise ConfigError(
                _flag("processes"), flags["processes"], "it runs its own manager and workers"
            )
        processes = _value(flags, "processes")
        if processes > 1:
            return Role(
                kind=RoleKind.LOCAL, processes=processes, bind_host="127.0.0.1", bind_port=0
            )
    if manager and worker:
        raise ConfigError("--worker", True, "a process is either --manager or --worker, not both")
    manager_only = ("expect_workers", "manager_bind_host", "manager_bind_port", "no_hash_check")
    worker_only = ("manager_host", "manager_port", "join_timeout", "leave_on_sigterm")
    either = ("gaggle_token", "tls_cert", "tls_key", "tls_ca")
    for key in either:
        if key in flags and not (manager or worker):
            raise ConfigError(_flag(key), flags[key], "it goes with --manager or --worker")
    for key in manager_only:
        if key in flags and not manager:
            raise ConfigError(_flag(key), flags[key], "it goes with --manager")
    for key in worker_only:
        if key in flags and not worker:
            raise ConfigError(_flag(key), flags[key], "it goes with --worker")
    if manager:
        if "expect_workers" not in flags:
            raise ConfigError("--expect-workers", None, "--manager needs --expect-workers N (≥ 1)")
        return Role(
            kind=RoleKind.MANAGER,
            expect_workers=_value(flags, "expect_workers"),
            bind_host=_value(flags, "manager_bind_host"),
            bind_port=_value(flags, "manager_bind_port"),
            hash_check=not _value(flags, "no_hash_check"),
            **_security(flags, manager=True),
        )
    if worker:
        return Role(
            kind=RoleKind.WORKER,
            manager_host=_value(flags, "manager_host"),
            manager_port=_value(flags, "manager_port"),
            join_timeout=_value(flags, "join_timeout"),
            leave_on_sigterm=_value(flags, "leave_on_sigterm"),
            **_security(flags, manager=False),
        )
    return Role()
