"""A LoadTest's spec, read and checked with the engine's own rules.

Why here and not only in the CRD's schema: the schema catches types and ranges at ``kubectl apply``,
but a duration, a URL, a threshold or an extra ``gaggle run`` flag is checked by the engine's config
model, exactly as on the command line. Every error names the spec field, the value and what is
allowed; the operator puts it in a ``Validated=False`` condition and an Event.

The operator's defaults (defaults.py, set by the Helm chart) fill what the spec leaves
out, and the spec always wins: ``workers.template`` / ``manager.template`` are laid over the
default resources (the parsed spec holds the result, checked: Kubernetes would refuse a pod whose
request exceeds its limit), and each ``cleanup`` field given replaces only that default.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any

from gaggle.errors import ConfigError
from gaggle.metrics import OPERATORS, ThresholdError, parse_threshold
from gaggle.options import (
    MAX_WORKERS,
    OPERATOR_KEYS,
    OPTIONS_BY_NAME,
    SECONDS_MAX,
    WORKERS_WHY,
    RunConfig,
    build_config,
    parse_run_args,
)
from gaggle_operator import pod_policy
from gaggle_operator.defaults import CLEANUP_POLICIES, CONTAINER, Defaults, resources_problem
from gaggle_operator.load_spec import check_replicas_hold, load, open_model
from gaggle_operator.overlay import overlay
from gaggle_operator.schedule import Schedule, schedule_of
from gaggle_operator.spec_values import (
    SpecError,
    checked_by,
    engine_value,
    get_field,
    positive_field,
)

__all__ = [
    "HISTORY_LIMIT",
    "HISTORY_MAX",
    "OWNED_FLAGS",
    "SCRIPT_DIR",
    "SPEC_FIELDS",
    "Baseline",
    "LoadTestSpec",
    "Script",
    "SpecError",
    "baseline_of",
    "cleanup_of",
    "history_limit_of",
    "parse_spec",
]

PULL_POLICIES = ("Always", "IfNotPresent", "Never")
# Flags that the operator sets itself (from spec fields or the gaggle's shape): not in `args`.
OWNED_FLAGS = OPERATOR_KEYS
SCRIPT_DIR = "/gaggle/script"
# Every spec field parse_spec reads (``[]``: each item of a list); deploy/crd.yaml declares exactly
# these, which a test checks.
SPEC_FIELDS = frozenset(
    {
        "script.inline",
        "script.configMap.name",
        "script.configMap.key",
        "script.path",
        "extraConfigMaps[].name",
        "extraConfigMaps[].mountPath",
        "host",
        "users",
        "hatchRate",
        "runTime",
        "plan",
        "throttleRequests",
        "stopTimeout",
        "statusCodes",
        "resetMetrics",
        "args",
        "thresholds[].metric",
        "thresholds[].request",
        "thresholds[].op",
        "thresholds[].value",
        "thresholds[].baseline",
        "abortOnFail",
        "image",
        "imagePullPolicy",
        "workers.replicas",
        "workers.template",
        "manager.template",
        "spread",
        "startPolicy.readyTimeoutSeconds",
        "activeDeadlineSeconds",
        "cleanup.policy",
        "cleanup.ttlSecondsAfterFinished",
        "runId",
        "arrivalRate",
        "maxUsers",
        "iterations",
        "networkPolicy.enabled",
        "networkPolicy.metricsFrom",
        "schedule",
        "timeZone",
        "suspend",
        "concurrencyPolicy",
        "startingDeadlineSeconds",
        "history.limit",
        "baseline.previous",
        "baseline.runId",
    }
)
PEER_KEYS = ("podSelector", "namespaceSelector", "ipBlock")
A_YEAR = "a year: a LoadTest's longest run time"  # activeDeadlineSeconds, ttlSecondsAfterFinished
# thresholds[].baseline: a regression rule's offset from the baseline's value
BASELINE_OFFSET = re.compile(r"^(0|[+-][0-9]+(\.[0-9]+)?%?)$")
BASELINE_OFFSET_ALLOWED = (
    "use +N% or -N% (of the baseline's value), +N or -N (in the metric's unit), or 0 (the "
    "baseline's value itself), e.g. +10%"
)
HISTORY_LIMIT, HISTORY_MAX = 10, 100  # spec.history.limit: runs kept, each a ConfigMap of ~1 MiB


@dataclass(frozen=True, slots=True)
class Script:
    inline: str | None = None
    config_map: tuple[str, str] | None = None  # (name, key)
    path: str | None = None

    def file(self) -> str:
        """Where the test file is inside the pods."""
        if self.path is not None:
            return self.path
        key = self.config_map[1] if self.config_map else "loadtest.py"
        return f"{SCRIPT_DIR}/{key}"


@dataclass(frozen=True, slots=True)
class Baseline:
    """``spec.baseline``: the run each run is compared with (``run_id`` None: the previous
    good run of the history)."""

    run_id: str | None = None


@dataclass(frozen=True, slots=True)
class LoadTestSpec:
    script: Script
    host: str
    users: int
    run_time: float
    hatch_rate: float = 1.0
    throttle_requests: int | None = None
    status_codes: bool = False
    reset_metrics: bool = True
    args: tuple[str, ...] = ()
    thresholds: tuple[str, ...] = ()
    abort_on_fail: bool = False
    extra_config_maps: tuple[tuple[str, str], ...] = ()  # (name, mountPath)
    image: str = ""
    image_pull_policy: str = "IfNotPresent"
    replicas: int = 1
    worker_template: dict[str, Any] = field(default_factory=dict)
    manager_template: dict[str, Any] = field(default_factory=dict)
    spread: bool = False
    ready_timeout: int = 300
    active_deadline: int | None = None
    cleanup_policy: str = "Never"
    cleanup_ttl: int = 0
    run_id: str = ""
    network_policy: bool = False
    metrics_from: tuple[dict[str, Any], ...] | None = None  # None: from anywhere
    plan: str | None = None  # --test-plan, canonical; then users is its peak, run_time its length
    arrival_rate: float = 0.0  # an open model: iterations started per second (then users is 0)
    max_users: int | None = None  # an open model's pool (None: the engine's default)
    iterations: int | None = None  # each user's task cycles (a closed model)
    stop_timeout: float | None = None  # --stop-timeout (None: the engine's default)
    schedule: Schedule | None = None  # spec.schedule and its companions (schedule.py)
    history_limit: int = HISTORY_LIMIT  # spec.history.limit: runs kept in ConfigMaps
    baseline: Baseline | None = None  # spec.baseline (None: no comparison)

    def gaggle_args(self, skip: tuple[str, ...] = ()) -> list[str]:
        """The load options for ``gaggle run`` on the manager (workers take them from it);
        ``skip``: threshold rules left out (regression rules with no baseline run yet)."""
        if self.plan:
            args = ["--host", self.host, "--test-plan", self.plan]
        elif self.arrival_rate:
            args = ["--host", self.host, "--arrival-rate", f"{self.arrival_rate:g}"]
            args += ["-t", f"{self.run_time:g}"]
        else:
            args = ["--host", self.host, "-u", str(self.users), "-r", f"{self.hatch_rate:g}"]
            args += ["-t", f"{self.run_time:g}"]
        if self.max_users is not None:
            args += ["--max-users", str(self.max_users)]
        if self.iterations is not None:
            args += ["--iterations", str(self.iterations)]
        if self.throttle_requests:
            args += ["--throttle-requests", str(self.throttle_requests)]
        if self.stop_timeout is not None:
            args += ["--stop-timeout", f"{self.stop_timeout:g}"]
        if self.status_codes:
            args.append("--status-codes")
        if not self.reset_metrics:
            args.append("--no-reset-metrics")
        for rule in self.thresholds:
            if rule not in skip:
                args += ["--threshold", rule]
        return [*args, *self.args]


def _script(spec: dict[str, Any]) -> Script:
    script = get_field(spec, "script", dict)
    if script is None:
        raise SpecError("script", None, "give exactly one of inline, configMap or path")
    given = [key for key in ("inline", "configMap", "path") if script.get(key) is not None]
    if len(given) != 1:
        raise SpecError("script", sorted(given), "give exactly one of inline, configMap or path")
    if given == ["inline"]:
        text = get_field(spec, "script.inline", str)
        try:
            compile(text, "spec.script.inline", "exec")
        except SyntaxError as error:
            where = f"line {error.lineno}"
            raise SpecError("script.inline", where, f"valid Python ({error.msg})") from None
        return Script(inline=text)
    if given == ["configMap"]:
        name = get_field(spec, "script.configMap.name", str)
        key = get_field(spec, "script.configMap.key", str, "loadtest.py")
        if not name:
            raise SpecError("script.configMap.name", name, "name the ConfigMap holding the test")
        return Script(config_map=(name, key))
    path = get_field(spec, "script.path", str)
    if not path.startswith("/"):
        raise SpecError("script.path", path, "use an absolute path inside the image")
    return Script(path=path)


def _args(spec: dict[str, Any]) -> tuple[str, ...]:
    args = get_field(spec, "args", list, [])
    if not all(isinstance(arg, str) for arg in args):
        raise SpecError("args", args, "use a list of strings (extra `gaggle run` flags)")
    try:
        values, listing = parse_run_args(args, raise_errors=True, gaggle_flags=True)
    except ConfigError as error:
        raise SpecError("args", args, str(error)) from None
    owned = sorted(OWNED_FLAGS & set(values)) + (["list"] if listing else [])
    if owned:
        flag = OPTIONS_BY_NAME[owned[0]].flag
        raise SpecError("args", args, f"{flag} is set by the operator (use the spec's own field)")
    try:
        build_config(values)
    except ConfigError as error:
        raise SpecError("args", args, str(error)) from None
    return tuple(args)


def _throttle(spec: dict[str, Any]) -> int | None:
    """``--throttle-requests``, checked by its converter (a whole number, up to its bound)."""
    value = get_field(spec, "throttleRequests", int)
    return None if value is None else int(engine_value("throttle_requests", value))


def _stop_timeout(spec: dict[str, Any]) -> float | None:
    """``--stop-timeout``, checked by its converter (a duration up to its bound)."""
    value = get_field(spec, "stopTimeout", (str, int))
    return None if value is None else float(engine_value("stop_timeout", value))


def _bound(item: dict[str, Any], path: str) -> str:
    """A rule's right-hand side: ``value``, or ``baseline`` and its offset (a regression rule:
    ``+10%`` becomes ``baseline + 10%``)."""
    value, offset = item.get("value"), item.get("baseline")
    if offset is not None:
        if value is not None:
            raise SpecError(path, item, "give value or baseline, not both")
        if not isinstance(offset, str) or not BASELINE_OFFSET.match(offset):
            raise SpecError(f"{path}.baseline", offset, BASELINE_OFFSET_ALLOWED)
        return "baseline" if offset == "0" else f"baseline {offset[0]} {offset[1:]}"
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not math.isfinite(value):  # type: ignore[arg-type]
        raise SpecError(f"{path}.value", value, "use a finite number (or a baseline offset)")
    return str(value)


def _thresholds(spec: dict[str, Any]) -> tuple[str, ...]:
    rules = []
    for i, item in enumerate(get_field(spec, "thresholds", list, [])):
        path = f"thresholds[{i}]"
        if not isinstance(item, dict):
            raise SpecError(path, item, "use {metric, op, value} and optionally request")
        op = item.get("op")
        if op not in OPERATORS:
            raise SpecError(f"{path}.op", op, "use one of <, <=, >, >=")
        bound = _bound(item, path)
        if item.get("baseline") is not None and get_field(spec, "baseline", dict) is None:
            allowed = "set spec.baseline too ({previous: true} or {runId: ...}): the run it means"
            raise SpecError(f"{path}.baseline", item["baseline"], allowed)
        request = item.get("request")
        text = f"{item.get('metric')}{f'({request})' if request else ''} {op} {bound}"
        try:
            rules.append(str(parse_threshold(text)))
        except ThresholdError as error:
            raise SpecError(f"{path}.metric", item.get("metric"), error.why) from None
    return tuple(rules)


def cleanup_of(spec: dict[str, Any], defaults: Defaults) -> tuple[str, int]:
    """``(policy, ttlSecondsAfterFinished)``: the spec's, each falling back to the default.
    Cheap (the operator asks on every tick of a finished LoadTest)."""
    policy = get_field(spec, "cleanup.policy", str, defaults.cleanup_policy)
    if policy not in CLEANUP_POLICIES:
        raise SpecError("cleanup.policy", policy, "use one of " + ", ".join(CLEANUP_POLICIES))
    ttl: int = get_field(spec, "cleanup.ttlSecondsAfterFinished", int, defaults.cleanup_ttl)
    if not 0 <= ttl <= SECONDS_MAX:
        allowed = f"use a whole number ≥ 0 and ≤ {SECONDS_MAX:,} ({A_YEAR})"
        raise SpecError("cleanup.ttlSecondsAfterFinished", ttl, allowed)
    return policy, ttl


def history_limit_of(spec: dict[str, Any]) -> int:
    """``spec.history.limit``: how many runs keep their ConfigMap (0: none). Cheap: the
    operator asks when each run ends."""
    limit: int = get_field(spec, "history.limit", int, HISTORY_LIMIT)
    if not 0 <= limit <= HISTORY_MAX:
        allowed = f"use a whole number from 0 to {HISTORY_MAX} (a run's ConfigMap holds 1 MiB)"
        raise SpecError("history.limit", limit, allowed)
    return limit


def baseline_of(spec: dict[str, Any]) -> Baseline | None:
    """``spec.baseline``: ``{previous: true}`` or ``{runId: ...}``, exactly one."""
    given = get_field(spec, "baseline", dict)
    if given is None:
        return None
    previous = get_field(spec, "baseline.previous", bool, False)
    run_id = get_field(spec, "baseline.runId", (str, int))
    if previous == (run_id is not None) or ("previous" in given and not previous):
        allowed = "use {previous: true} (the last good run) or {runId: <a run of the history>}"
        raise SpecError("baseline", given, allowed)
    return Baseline(None if previous else str(run_id))


def _resources(template: dict[str, Any]) -> Any:
    """Our container's resources in a pod template ({} when it names none)."""
    pod = template.get("spec")
    containers = pod.get("containers") if isinstance(pod, dict) else None
    if not isinstance(containers, list):
        return {}
    ours = [c for c in containers if isinstance(c, dict) and c.get("name") == CONTAINER]
    return ours[0].get("resources", {}) if ours else {}


def _template(spec: dict[str, Any], path: str, role: str, defaults: Defaults) -> dict[str, Any]:
    """The spec's pod template laid over the role's default one, with our container's resources
    checked: first the template's own, then the mix (a template's ``limits.cpu: 250m`` under a
    default ``requests.cpu: 500m`` is a pod Kubernetes refuses)."""
    template = get_field(spec, path, dict, {})
    try:
        pod_policy.check(template, path)
    except pod_policy.Refused as refused:
        raise SpecError(refused.field, refused.value, refused.why) from None
    merged: dict[str, Any] = overlay(defaults.template(role), template)
    where = f"{path}.spec.containers[{CONTAINER}].resources"
    own, mixed = _resources(template), _resources(merged)
    problem = resources_problem(own, claims=True)
    if problem:
        raise SpecError(where, own, problem)
    problem = resources_problem(mixed, claims=True)
    if problem:
        hint = "the operator's default resources fill what the template leaves out: set both"
        raise SpecError(where, mixed, f"{problem}; {hint}")
    return merged


def _metrics_from(spec: dict[str, Any]) -> tuple[dict[str, Any], ...] | None:
    peers = get_field(spec, "networkPolicy.metricsFrom", list, None)
    if peers is None:
        return None
    for i, peer in enumerate(peers):
        if not isinstance(peer, dict) or not peer or set(peer) - set(PEER_KEYS):
            allowed = "use a NetworkPolicy peer: " + ", ".join(PEER_KEYS)
            raise SpecError(f"networkPolicy.metricsFrom[{i}]", peer, allowed)
    return tuple(peers)


def parse_spec(
    spec: dict[str, Any], default_image: str = "", defaults: Defaults | None = None
) -> LoadTestSpec:
    """The LoadTest's spec, checked field by field; raises SpecError naming the first bad one.
    ``defaults`` (the operator's) fill what the spec leaves out; the spec wins."""
    defaults = defaults or Defaults()
    script = _script(spec)
    host = engine_value("host", get_field(spec, "host", str))
    if host is None:
        raise SpecError("host", None, "give the URL to load test, e.g. http://my-service:8080")
    plan, users, run_seconds, hatch_rate = load(spec)
    arrival_rate, max_users, iterations = open_model(spec, plan)
    replicas = positive_field(spec, "workers.replicas", 1, MAX_WORKERS, WORKERS_WHY) or 1
    held = RunConfig(users=users, test_plan=plan, arrival_rate=arrival_rate)
    if max_users is not None:  # else the engine's default pool
        held = dataclasses.replace(held, max_users=max_users)
    check_replicas_hold(spec, held, replicas)
    ready = get_field(spec, "startPolicy.readyTimeoutSeconds", int, 300)
    ready_timeout = int(checked_by("join_timeout", "startPolicy.readyTimeoutSeconds", ready))
    policy = get_field(spec, "imagePullPolicy", str, "IfNotPresent")
    if policy not in PULL_POLICIES:
        raise SpecError("imagePullPolicy", policy, "use one of " + ", ".join(PULL_POLICIES))
    cleanup, ttl = cleanup_of(spec, defaults)
    image = get_field(spec, "image", str, default_image)
    if not image:
        raise SpecError("image", None, "give the gaggle image (or install the operator with one)")
    extra = []
    for i, item in enumerate(get_field(spec, "extraConfigMaps", list, [])):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name:
            raise SpecError(f"extraConfigMaps[{i}].name", name, "name a ConfigMap")
        extra.append((name, str(item.get("mountPath") or f"{SCRIPT_DIR}/{name}")))
    return LoadTestSpec(
        script=script,
        host=host,
        users=users,
        run_time=run_seconds,
        hatch_rate=hatch_rate,
        plan=plan,
        arrival_rate=arrival_rate,
        max_users=max_users,
        iterations=iterations,
        throttle_requests=_throttle(spec),
        stop_timeout=_stop_timeout(spec),
        status_codes=get_field(spec, "statusCodes", bool, False),
        reset_metrics=get_field(spec, "resetMetrics", bool, True),
        args=_args(spec),
        thresholds=_thresholds(spec),
        abort_on_fail=get_field(spec, "abortOnFail", bool, False),
        extra_config_maps=tuple(extra),
        image=image,
        image_pull_policy=policy,
        replicas=replicas,
        worker_template=_template(spec, "workers.template", "worker", defaults),
        manager_template=_template(spec, "manager.template", "manager", defaults),
        spread=get_field(spec, "spread", bool, False),
        ready_timeout=ready_timeout,
        active_deadline=positive_field(spec, "activeDeadlineSeconds", None, SECONDS_MAX, A_YEAR),
        cleanup_policy=cleanup,
        cleanup_ttl=ttl,
        run_id=str(get_field(spec, "runId", (str, int), "")),
        network_policy=get_field(spec, "networkPolicy.enabled", bool, False),
        metrics_from=_metrics_from(spec),
        schedule=schedule_of(spec),
        history_limit=history_limit_of(spec),
        baseline=baseline_of(spec),
    )
