"""The LoadTest operator (kopf): a LoadTest's life, from its spec to its verdict.

- create: check the spec (a bad one: phase Failed, ``Validated=False`` naming the field, a
  warning Event, nothing created), then create the children — owned by the LoadTest, so deleting
  it deletes them — and wait for the workers (``WaitingForWorkers``).
- every few seconds (a timer): read the pods. All workers connected (the manager says so in
  ``status.workers``) → ``Running``. The manager pod ends → ``Succeeded`` when the run completed
  (exit 0, or 3 when a threshold failed: ``status.verdict`` says how it went; ``Aborted`` when
  abortOnFail stopped it) or ``Failed`` with its reason. Workers not all connected within
  ``startPolicy.readyTimeoutSeconds``, or ``activeDeadlineSeconds`` passed → ``Failed`` with
  which pods and why, and the pods are deleted. After the run: the cleanup policy.
- update: a new ``spec.runId`` runs the test again; ``users``, ``hatchRate``, ``runTime`` or
  ``plan`` of a Running test are relayed to its manager's control API (relay.py); other spec
  changes during a run are refused with a condition, not silently applied.

The manager writes ``live``, ``summary``, ``thresholds``, ``verdict`` and ``workers.connected/
lost``; the operator writes everything else. Run as ``kopf run -m gaggle_operator.handlers``.

Its environment: ``GAGGLE_IMAGE`` (the pods' image when a spec names none), ``GAGGLE_OPERATOR_TICK``
(seconds between looks at a LoadTest) and the defaults for every LoadTest (defaults.py).
The defaults are read when kopf imports this module, so a bad one stops ``kopf run`` before it
handles anything, with one line naming the variable and its value (why: see defaults.py).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from gaggle._version import __version__
from gaggle.run import EXIT_THRESHOLDS
from gaggle_operator import children, defaults, history, kube, relay, scheduling
from gaggle_operator.conditions import now, set_condition
from gaggle_operator.pods import describe, ending, failed_pods, is_ready, role
from gaggle_operator.spec import (
    LoadTestSpec,
    SpecError,
    cleanup_of,
    history_limit_of,
    parse_spec,
)

GROUP, VERSION, PLURAL = children.GROUP, children.VERSION, children.PLURAL
DEFAULT_IMAGE = os.environ.get("GAGGLE_IMAGE", f"ghcr.io/gaggle-dev/gaggle:{__version__}")
TICK = float(os.environ.get("GAGGLE_OPERATOR_TICK", "2"))
try:
    DEFAULTS = defaults.from_env(os.environ)
except defaults.DefaultsError as error:
    raise SystemExit(f"gaggle operator: {error}") from None
FINAL = ("Succeeded", "Failed", "Aborted")
CHANGES_KEPT = 50  # status.changes: the latest live changes
Body = kopf.Body
Manifest = dict[str, Any]


def _age(stamp: str | None) -> float:
    if not stamp:
        return 0.0
    return (
        datetime.now(UTC) - datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    ).total_seconds()


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Our status is shared with the manager: kopf keeps its own bookkeeping in annotations.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="gaggle.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="gaggle.dev")
    settings.posting.level = 20  # INFO and up become Events


def _fail(
    body: Body,
    patch: kopf.Patch,
    phase: str,
    reason: str,
    message: str,
    conditions: list[Any] | None = None,
) -> None:
    """End the run in ``phase`` with why, in the status and as a Warning Event."""
    if conditions is None:
        conditions = body.get("status", {}).get("conditions", [])
    conditions = set_condition(conditions, "Completed", "False", reason, message)
    patch.status.update(
        phase=phase, reason=reason, message=message, endTime=now(), conditions=conditions
    )
    kopf.warn(body, reason=reason, message=message)


def _spec(body: Body, patch: kopf.Patch) -> LoadTestSpec | None:
    try:
        spec = parse_spec(dict(body.get("spec", {})), DEFAULT_IMAGE, DEFAULTS)
    except SpecError as error:
        conditions = set_condition(
            body.get("status", {}).get("conditions", []),
            "Validated",
            "False",
            "InvalidSpec",
            str(error),
        )
        patch.status.update(
            phase="Failed", reason="InvalidSpec", message=str(error), conditions=conditions
        )
        kopf.warn(body, reason="InvalidSpec", message=str(error))
        return None
    return spec


def _manifests(
    body: Body, spec: LoadTestSpec, run: str, compared: history.Compared | None = None
) -> list[Manifest]:
    name, namespace, uid = (body["metadata"][key] for key in ("name", "namespace", "uid"))
    baseline, unjudged = (compared.config_map, compared.unjudged) if compared else (None, ())
    made: list[Manifest | None] = [
        children.token_secret(name, uid, relay.token_for(uid)),  # the operator can call too
        children.script_config_map(name, spec),
        children.summary_config_map(name),
        *children.manager_rbac(name),
        children.network_policy(name, spec, run),  # before the pods, whose traffic it admits
        children.manager_service(name, run),
        children.manager_pod(name, namespace, spec, run, uid, baseline, unjudged),
        *(children.worker_pod(name, namespace, spec, run, i, uid) for i in range(spec.replicas)),
    ]
    return [m for m in made if m is not None]


def _create_children(
    body: Body, spec: LoadTestSpec, run: str, compared: history.Compared | None
) -> int:
    """Create what is missing; how many objects were created."""
    namespace, script = body["metadata"]["namespace"], children.names(body["metadata"]["name"])
    created = 0
    for manifest in _manifests(body, spec, run, compared):
        kopf.adopt(manifest, owner=body)
        if manifest["metadata"]["name"] == script["script"]:
            kube.create_or_update(manifest, namespace)  # a rerun may bring a new script
        else:
            created += kube.create(manifest, namespace)
    return created


def launch(body: Body, patch: kopf.Patch, logger: Any) -> None:
    spec = _spec(body, patch)
    if spec is None:
        return
    namespace = body["metadata"]["namespace"]
    run = scheduling.run_id(body) or spec.run_id or "0"
    if spec.script.config_map and not kube.config_map_exists(namespace, spec.script.config_map[0]):
        message = f"spec.script.configMap.name: ConfigMap {spec.script.config_map[0]!r} not found"
        conditions = set_condition([], "Validated", "False", "ConfigMapNotFound", message)
        patch.status.update(
            phase="Failed", reason="ConfigMapNotFound", message=message, conditions=conditions
        )
        kopf.warn(body, reason="ConfigMapNotFound", message=message)
        return
    conditions = set_condition(
        body.get("status", {}).get("conditions", []),
        "Validated",
        "True",
        "SpecValid",
        "the spec is valid",
    )
    try:
        compared = history.compare_with(body, spec)
    except history.BaselineMissing as missing:
        conditions = set_condition(
            conditions, "BaselineFound", "False", "BaselineNotFound", str(missing)
        )
        patch.status.update(runId=run, startTime=None)  # this run failed, and never started
        _fail(body, patch, "Failed", "BaselineNotFound", str(missing), conditions)
        return
    if compared is not None:
        found = ("True", "Found") if compared.found else ("False", "NoBaselineYet")
        conditions = set_condition(conditions, "BaselineFound", *found, compared.message)
        kopf.info(
            body, reason="Baseline" if compared.found else "NoBaseline", message=compared.message
        )
    try:
        created = _create_children(body, spec, run, compared)
    except kube.Refused as refused:
        # Final: a quota, LimitRange, Pod Security, a webhook or RBAC said no. What was created
        # stays for the owner's deletion; the pods already made stop.
        message = f"the API server refused {refused.kind} {refused.name}: {refused.words}"
        conditions = set_condition(conditions, "ResourcesCreated", "False", "CreateFailed", message)
        _stop(namespace, body["metadata"]["name"], body["metadata"]["uid"])
        _fail(body, patch, "Failed", "CreateFailed", message, conditions)
        return
    except kube.Occupied as occupied:
        message = f"waiting: {occupied}"
        conditions = set_condition(conditions, "ResourcesCreated", "False", "NameTaken", message)
        patch.status.update(phase="Pending", conditions=conditions)
        raise kopf.TemporaryError(message, delay=3) from None
    conditions = set_condition(
        conditions,
        "ResourcesCreated",
        "True",
        "Created",
        f"{created} object(s) created for run {run}",
    )
    desired = spec.replicas
    status = body.get("status", {})
    # a resumed launch of the same run keeps its start: the timeouts count from there
    resumed = status.get("phase") == "WaitingForWorkers" and status.get("runId") == run
    patch.status.update(
        phase="WaitingForWorkers",
        runId=run,
        observedGeneration=body["metadata"].get("generation"),
        startTime=status.get("startTime") if resumed and status.get("startTime") else now(),
        endTime=None,
        reason=None,
        message=None,
        conditions=conditions,
        workers={"desired": desired, "ready": 0, "connected": 0, "lost": 0, "text": f"0/{desired}"},
        baseline={"runId": compared.run_id, "configMap": compared.config_map}
        if compared and compared.found
        else None,
        comparison=None,
    )
    kopf.info(
        body, reason="Started", message=f"manager and {desired} worker(s) created (run {run})"
    )
    logger.info("run %s of %s: %d object(s) created", run, body["metadata"]["name"], created)


@kopf.on.create(GROUP, VERSION, PLURAL)
def created(body: Body, patch: kopf.Patch, logger: Any, **_: Any) -> None:
    _begin(body, patch, logger)


def _begin(body: Body, patch: kopf.Patch, logger: Any) -> None:
    """A new LoadTest runs now; a scheduled one, as a CronJob, first when its schedule says."""
    if not scheduling.wants_schedule(body):
        launch(body, patch, logger)
    elif _spec(body, patch) is not None:
        scheduling.wait(body, patch)


@kopf.on.resume(GROUP, VERSION, PLURAL)
def resumed(body: Body, patch: kopf.Patch, logger: Any, **_: Any) -> None:
    """A restarted operator creates only what is missing, and only before the run started; a
    rerun whose last run's pods are still going waits for them, as the timer does."""
    phase = body.get("status", {}).get("phase")
    metadata = body["metadata"]
    if phase == "Pending" and kube.pods(metadata["namespace"], metadata["name"], metadata["uid"]):
        return  # the timer launches once they are gone (else their ending would count as ours)
    if phase is None:
        _begin(body, patch, logger)
    elif phase in ("Pending", "WaitingForWorkers"):
        launch(body, patch, logger)


@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
def updated(body: Body, old: Any, new: Any, patch: kopf.Patch, **_: Any) -> None:
    status = body.get("status", {})
    scheduling.spec_changed(body, old, new, patch, FINAL)
    if (old or {}).get("runId") != (new or {}).get("runId"):
        metadata = body["metadata"]
        for pod in kube.pods(metadata["namespace"], metadata["name"], metadata["uid"]):
            kube.delete("Pod", pod["metadata"]["name"], metadata["namespace"])
        patch.status.update(
            phase="Pending", summary=None, live=None, verdict=None, thresholds=None, cleanedUp=None
        )
        patch.status.update(comparison=None, baseline=None)  # the last run's, not the next's
        patch.status.update(scheduling.manual_run(body))
        kopf.info(body, reason="Rerun", message=f"runId changed to {new.get('runId')!r}")
        return
    if scheduling.only_schedule(old, new):
        return  # read live by the timer's next look: no run takes them
    changed = relay.changed_fields(old, new)
    if status.get("phase") == "Running" and changed and changed <= relay.LIVE_FIELDS:
        _change_live(body, old or {}, new or {}, patch)
        return
    if status.get("phase") not in (*FINAL, scheduling.SCHEDULED):
        message = f"the spec changed during a run; change spec.runId to run it again ({relay.LIVE})"
        conditions = set_condition(
            status.get("conditions", []), "SpecChangeRefused", "True", "RunInProgress", message
        )
        patch.status["conditions"] = conditions
        kopf.warn(body, reason="SpecChangeRefused", message=message)


def _change_live(body: Body, old: Any, new: Any, patch: kopf.Patch) -> None:
    """users, hatchRate, runTime or plan of a Running LoadTest: its manager's control API
    changes the running test (gaggle_operator.relay); each change is an Event and an entry of
    ``status.changes``."""
    metadata, status = body["metadata"], body.get("status", {})
    try:
        parse_spec(dict(new), DEFAULT_IMAGE, DEFAULTS)
    except SpecError as error:  # the run goes on as it was
        kopf.warn(body, reason="SpecChangeRefused", message=str(error))
        return
    base = relay.manager_url(metadata["name"], metadata["namespace"])
    outcomes = relay.relay(base, relay.token_for(metadata["uid"]), dict(old), dict(new))
    for outcome in outcomes:
        event = kopf.warn if outcome.error else kopf.info
        event(body, reason=outcome.reason, message=outcome.message)
    records = [outcome.record(now()) for outcome in outcomes]
    patch.status["changes"] = [*status.get("changes", []), *records][-CHANGES_KEPT:]


def watched(body: Body, **_: Any) -> bool:
    """Whether the timer still has work: a run to follow, or a cleanup to do. kopf holds its
    finalizer on a LoadTest only while this is true, so a finished one is deleted (alone, or
    with its namespace) without waiting for an operator that may be gone. A schedule (not
    suspended) needs the timer always: its LoadTest waits for an operator to be deleted."""
    phase = body.get("status", {}).get("phase")
    if phase == scheduling.SCHEDULED:  # nothing has run: nothing to follow or clean up
        return scheduling.ticking(body)
    return phase not in FINAL or _cleanup_due(body) is not None or scheduling.ticking(body)


@kopf.timer(GROUP, VERSION, PLURAL, interval=TICK, when=watched)
def watch(body: Body, patch: kopf.Patch, logger: Any, **_: Any) -> None:
    status = body.get("status", {})
    phase = status.get("phase")
    namespace, name, uid = (body["metadata"][key] for key in ("namespace", "name", "uid"))
    if scheduling.tick(body, patch, FINAL):
        return  # a due time requested a run: the next look launches it
    if phase == "Pending":
        if not kube.pods(namespace, name, uid):  # the previous run's pods are gone: run again
            launch(body, patch, logger)
        return
    if phase in FINAL:
        _cleanup(body, patch)
        return
    if phase not in ("WaitingForWorkers", "Running"):
        return
    pods = kube.pods(namespace, name, uid)
    workers = [p for p in pods if role(p) == "worker"]
    manager = next((p for p in pods if role(p) == "manager"), None)
    failed = failed_pods(pods)
    health = ("False", "PodTrouble", describe(failed)) if failed else ("True", "AllHealthy", "ok")
    conditions = set_condition(status.get("conditions", []), "PodsHealthy", *health)
    patch.status.update(failedPods=failed, workers={"ready": sum(map(is_ready, workers))})
    # Written only when it changed: the list is replaced whole, and a tick's copy may predate
    # a condition the update handler has just written (SpecChangeRefused), which it would undo.
    if conditions != status.get("conditions", []):
        patch.status["conditions"] = conditions
    spec = body.get("spec", {})
    # Gone, or going: a deleted or evicted manager gets SIGTERM and may end its run cleanly
    # (exit 0) before it goes, which is not the run completing. The operator deletes pods
    # only after a final phase, so a deletion seen here is someone else's.
    if manager is None or manager["metadata"].get("deletionTimestamp"):
        message = (
            f"the manager pod {children.names(name)['manager']} is gone (deleted, evicted or "
            "its node lost); its workers stop with it"
        )
        _record(body, patch, "Failed", "ManagerLost")
        _stop(namespace, name, uid)
        _fail(body, patch, "Failed", "ManagerLost", message, conditions)
        return
    end = ending(manager)
    desired = status.get("workers", {}).get("desired", 0)
    connected = status.get("workers", {}).get("connected", 0)
    # A short run can start and end between two looks: a manager that completed ran with all
    # its workers (it starts only then), so Running is recorded first, and the events and
    # conditions tell each phase in order.
    completed = end is not None and end.exit_code in (0, EXIT_THRESHOLDS)
    if phase == "WaitingForWorkers" and desired and (connected >= desired or completed):
        conditions = set_condition(
            conditions, "WorkersReady", "True", "AllConnected", f"{desired} worker(s) connected"
        )
        conditions = set_condition(conditions, "Started", "True", "Running", "the gaggle runs")
        patch.status.update(phase="Running", conditions=conditions)
        kopf.info(body, reason="Running", message=f"all {desired} worker(s) connected")
        if end is None:
            return
    if end is not None:
        _finished(body, patch, end.exit_code, end.reason, conditions)
        return
    timeout = spec.get("startPolicy", {}).get("readyTimeoutSeconds", 300)
    if phase == "WaitingForWorkers" and _age(status.get("startTime")) > timeout:
        message = (
            f"{connected}/{desired} worker(s) connected after {timeout} s ({describe(failed)})"
        )
        _record(body, patch, "Failed", "WorkersNotReady")
        _stop(namespace, name, uid)
        _fail(body, patch, "Failed", "WorkersNotReady", message)
        return
    deadline = spec.get("activeDeadlineSeconds")
    if deadline and _age(status.get("startTime")) > deadline:
        _record(body, patch, "Failed", "DeadlineExceeded")
        _stop(namespace, name, uid)
        _fail(body, patch, "Failed", "DeadlineExceeded", f"still running after {deadline} s")


def _finished(body: Body, patch: kopf.Patch, code: int, reason: str, conditions: list[Any]) -> None:
    status = body.get("status", {})
    stopped_by = str(status.get("summary", {}).get("stoppedBy", ""))
    if code in (0, EXIT_THRESHOLDS):
        phase = "Aborted" if "abortOnFail" in stopped_by else "Succeeded"
        message = f"the run completed ({stopped_by or 'manager exited'})"
        _record(body, patch, phase, None)
        conditions = set_condition(conditions, "Completed", "True", phase, message)
        if status.get("verdict"):
            passed = status["verdict"] == "Passed"
            failed = [t["expression"] for t in status.get("thresholds", []) if not t["passed"]]
            conditions = set_condition(
                conditions,
                "ThresholdsPassed",
                "True" if passed else "False",
                "Passed" if passed else "ThresholdFailed",
                "all thresholds held" if passed else "failed: " + "; ".join(failed),
            )
        patch.status.update(phase=phase, endTime=now(), conditions=conditions)
        kopf.info(body, reason=phase, message=f"{message}; verdict {status.get('verdict', 'n/a')}")
        return
    _record(body, patch, "Failed", "ManagerFailed")
    _stop(body["metadata"]["namespace"], body["metadata"]["name"], body["metadata"]["uid"])
    _fail(body, patch, "Failed", "ManagerFailed", f"the manager exited {code} ({reason})")


def _record(body: Body, patch: kopf.Patch, phase: str, reason: str | None) -> None:
    """The run that ends into its history ConfigMap, and status.history from them (history.py).
    Before the final phase is patched: an API error leaves the run unfinished, for the next tick
    to record it then; a refusal (RBAC, a quota) or a ConfigMap of that name that is not the
    LoadTest's is said in an Event, and the run ends anyway."""
    try:
        limit = history_limit_of(dict(body.get("spec", {})))
    except SpecError as error:  # changed since the launch: the run ends, unrecorded
        kopf.warn(body, reason="HistoryNotKept", message=str(error))
        return
    try:
        patch.status["history"] = history.record(body, phase, reason, limit)
    except (kube.Refused, kube.Occupied) as error:  # for good, or a name of someone else's
        kopf.warn(body, reason="HistoryNotKept", message=f"the run's history was not kept: {error}")
    except ApiException as error:  # 5xx, 429: the next tick tries again
        raise kopf.TemporaryError(f"keeping the run in its history: {error}", delay=TICK) from None


def _stop(namespace: str, name: str, uid: str, everything: bool = False) -> None:
    """Delete the pods still running (load stops); ended ones stay for `kubectl logs`."""
    for pod in kube.pods(namespace, name, uid):
        if everything or ending(pod) is None:
            kube.delete("Pod", pod["metadata"]["name"], namespace)


def _cleanup_due(body: Body) -> tuple[str, float] | None:
    """(policy, ttl) when a finished run's children are still to be deleted; None otherwise."""
    status = body.get("status", {})
    if status.get("cleanedUp"):
        return None
    try:
        policy, ttl = cleanup_of(dict(body.get("spec", {})), DEFAULTS)
    except SpecError:  # refused at creation: nothing was created
        return None
    if policy == "Never":
        return None
    succeeded = status.get("phase") == "Succeeded" and status.get("verdict") != "Failed"
    if policy == "OnSuccess" and not succeeded:
        return None
    return policy, ttl


def _cleanup(body: Body, patch: kopf.Patch) -> None:
    """After the run: the spec's cleanup policy and TTL, each defaulting to the operator's."""
    due = _cleanup_due(body)
    if due is None:
        return
    policy, ttl = due
    status = body.get("status", {})
    if _age(status.get("endTime")) < ttl:
        return
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    uid = body["metadata"]["uid"]
    _stop(namespace, name, uid, everything=True)
    made = children.names(name)
    for kind, key in (
        ("Service", "service"),
        ("ConfigMap", "script"),
        ("RoleBinding", "account"),
        ("Role", "account"),
        ("ServiceAccount", "account"),
        ("NetworkPolicy", "policy"),
    ):
        kube.delete(kind, made[key], namespace)
    kube.delete("Secret", children.token_name(name, uid), namespace)
    patch.status["cleanedUp"] = True
    kopf.info(body, reason="CleanedUp", message=f"children deleted ({policy}); the summary stays")
