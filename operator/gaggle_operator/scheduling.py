"""A scheduled LoadTest on the operator's timer: what schedule.py decides, done.

- Created with a schedule, a LoadTest does not run at once (as a CronJob): phase ``Scheduled``.
- Each look (the timer ``watch``, whose ticks never overlap): ``status.schedule`` kept current;
  a due time with no run going requests a run as a rerun does — phase ``Pending``, the previous
  run's pods deleted, and the next look launches once they are gone — with the run's id and its
  due time written in that same status patch, so that no later look starts that due time again;
  a due time during a run is skipped (Forbid), said in an Event and ``status.schedule.skipped``.
- A changed spec: the schedule fields are read live by the next look, so changing them never
  touches a running run; a bad schedule is refused like any spec error, and ``suspend`` clears
  ``next`` (and releases the timer, and so kopf's finalizer: a suspended LoadTest is deleted
  without an operator).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import kopf

from gaggle_operator import kube
from gaggle_operator.conditions import set_condition
from gaggle_operator.schedule import (
    FIELDS,
    MISSED_COUNTED,
    SCHEDULED,
    Schedule,
    State,
    decide,
    parse_stamp,
    schedule_of,
    scheduled,
    stamp,
)
from gaggle_operator.spec_values import SpecError

__all__ = ["SCHEDULED", "manual_run", "only_schedule", "run_id", "spec_changed", "tick"]
__all__ += ["ticking", "wait", "wants_schedule"]

Body = Any  # kopf.Body, or a plain dict in tests


def wants_schedule(body: Body) -> bool:
    """Whether the LoadTest has a schedule (checked or not): its creation runs nothing."""
    return scheduled(dict(body.get("spec", {})))


def _schedule(body: Body) -> Schedule | None:
    try:
        return schedule_of(dict(body.get("spec", {})))
    except SpecError:  # said at creation, or when the spec changed (spec_changed)
        return None


def ticking(body: Body) -> bool:
    """Whether the timer must keep looking for the schedule's sake: a good schedule, not
    suspended. kopf holds its finalizer on the LoadTest meanwhile."""
    schedule = _schedule(body)
    return schedule is not None and not schedule.suspend


def run_id(body: Body) -> str | None:
    """The scheduled run the LoadTest is on (``s-<n>``), None after a run of the user's runId."""
    found = body.get("status", {}).get("schedule", {}).get("runId")
    return found if isinstance(found, str) and found else None


def manual_run(body: Body) -> dict[str, Any]:
    """What a run started by a new ``spec.runId`` writes in the status: the runs that follow are
    the user's, not the schedule's."""
    return {"schedule": {"runId": None}} if run_id(body) else {}


def wait(body: Body, patch: kopf.Patch) -> None:
    """A new scheduled LoadTest (its spec checked): nothing runs before its first due time."""
    schedule = _schedule(body)
    if schedule is None:
        return
    conditions = set_condition(
        body.get("status", {}).get("conditions", []), "Validated", "True", "SpecValid",
        "the spec is valid",
    )  # fmt: skip
    patch.status.update(phase=SCHEDULED, conditions=conditions)
    first = schedule.next_after(datetime.now(UTC))
    when = "suspended" if schedule.suspend else f"the first run is due at {_text(first)}"
    message = f"runs on its schedule {schedule.expression!r} ({schedule.zone_name}): {when}"
    kopf.info(body, reason="Scheduled", message=message)


def _text(moment: datetime | None) -> str:
    return "never" if moment is None else stamp(moment)


def _running(body: Body, final: tuple[str, ...]) -> str | None:
    """The run going on, for a skip's message; None when the LoadTest is idle."""
    status = body.get("status", {})
    phase = status.get("phase")
    if phase in final or phase in (None, SCHEDULED):
        return None
    if phase == "Pending":  # a run requested, waiting for the last one's pods to go
        return f"run {run_id(body) or body.get('spec', {}).get('runId') or '0'} (Pending)"
    return f"run {status.get('runId')} ({phase})"


def _written(state: State) -> dict[str, Any]:
    """``state`` as the API server keeps it (a merge patch removes the keys set to None)."""
    return {key: value for key, value in state.status().items() if value is not None}


def tick(body: Body, patch: kopf.Patch, final: tuple[str, ...]) -> bool:
    """One look at the clock (``final``: the phases of a run that has ended). True when a due
    time requested a run: the look ends there, and the next one launches it."""
    schedule = _schedule(body)
    if schedule is None or schedule.suspend:
        return False
    status, metadata = body.get("status", {}), body["metadata"]
    now = datetime.now(UTC)
    created = parse_stamp(metadata.get("creationTimestamp"))
    # before any run, due times count from the creation (a CronJob's); a schedule added to a
    # LoadTest that has run counts from when it is first seen
    first = created if created and status.get("phase") in (None, SCHEDULED) else now
    before = State.of(status)
    decision = decide(schedule, before, now, _running(body, final), first)
    if _written(decision.state) != status.get("schedule"):
        patch.status["schedule"] = decision.state.status()
    if decision.action == "wait" or decision.due is None:
        return False
    due, following = stamp(decision.due), _text(decision.state.next)
    if decision.action == "skip":
        message = f"the run due at {due} is skipped: {decision.why}; the next is due at {following}"
        kopf.warn(body, reason="ScheduleSkipped", message=message)
        return False
    # A run: the previous run's pods go first (the next look launches once they are gone).
    namespace = metadata["namespace"]
    for pod in kube.pods(namespace, metadata["name"], metadata["uid"]):
        kube.delete("Pod", pod["metadata"]["name"], namespace)
    patch.status.update(
        phase="Pending", summary=None, live=None, verdict=None, thresholds=None, cleanedUp=None
    )
    message = f"run {decision.state.run_id} for the time due at {due}; the next at {following}"
    if decision.missed:
        many = decision.missed if decision.missed < MISSED_COUNTED else f"at least {MISSED_COUNTED}"
        message += (
            f" ({many} earlier due time(s) passed unseen, with no operator or suspended: only "
            "the latest runs, as a CronJob's)"
        )
    kopf.info(body, reason="ScheduledRun", message=message)
    return True


def _fields(spec: Any) -> dict[str, Any]:
    return {key: value for key, value in dict(spec or {}).items() if key in FIELDS}


def only_schedule(old: Any, new: Any) -> bool:
    """Whether a spec change touched the schedule's fields and nothing else: accepted whatever
    the phase (the next look reads them; a running run is not theirs)."""
    old, new = dict(old or {}), dict(new or {})
    changed = {key for key in set(old) | set(new) if old.get(key) != new.get(key)}
    return bool(changed) and changed <= FIELDS


def spec_changed(body: Body, old: Any, new: Any, patch: kopf.Patch, final: tuple[str, ...]) -> None:
    """The schedule's fields changed: a bad schedule refused as any spec error (the phase turns
    Failed only between runs), a suspended or removed one clears ``next``."""
    before, after = _fields(old), _fields(new)
    if before == after:
        return
    status = body.get("status", {})
    try:
        schedule = schedule_of(dict(new or {}))
    except SpecError as error:
        conditions = set_condition(
            status.get("conditions", []), "Validated", "False", "InvalidSpec", str(error)
        )
        patch.status["conditions"] = conditions
        if _running(body, final) is None:
            patch.status.update(phase="Failed", reason="InvalidSpec", message=str(error))
        if status.get("schedule"):
            patch.status["schedule"] = {"next": None}
        kopf.warn(body, reason="InvalidSpec", message=str(error))
        return
    if schedule is None or schedule.suspend:
        if status.get("schedule"):
            patch.status["schedule"] = {"next": None}  # nothing is due
        if schedule is not None and not before.get("suspend"):
            message = "no new runs until spec.suspend is false; a run going on goes on"
            kopf.info(body, reason="Suspended", message=message)
        return
    if before.get("suspend"):
        message = (
            "runs on its schedule again; if a time fell due meanwhile, the latest runs now (as "
            "a CronJob's), unless past startingDeadlineSeconds"
        )
        kopf.info(body, reason="Resumed", message=message)
