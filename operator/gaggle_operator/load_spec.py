"""The load a spec asks for: a ``plan`` (of users or of rates), or ``users``/``hatchRate``/
``runTime``, or ``arrivalRate``/``runTime`` (an open model), with ``maxUsers`` and
``iterations`` where they mean something — each combination the engine would refuse is refused
here, naming the spec's field."""

from __future__ import annotations

from typing import Any

from gaggle.errors import ConfigError
from gaggle.load import is_rate_plan, stages
from gaggle.options import OPTIONS_BY_NAME, RunConfig, check_shares
from gaggle_operator.spec_values import SpecError, converted, engine_value, get_field

_SPEC_FIELD = {entry.flag: entry.spec for entry in OPTIONS_BY_NAME.values()}  # --users: users


def open_model(spec: dict[str, Any], plan: str | None) -> tuple[float, int | None, int | None]:
    """(arrival rate, max users, iterations): ``arrivalRate`` starts iterations on a schedule
    (with ``runTime``; not with ``users``/``hatchRate``), ``maxUsers`` bounds an open model's
    pool (``arrivalRate`` or a plan of rates), ``iterations`` ends each user of a closed one."""
    rate = get_field(spec, "arrivalRate", (int, float))
    given = [key for key in ("users", "hatchRate", "plan", "iterations") if key in spec]
    if rate is not None and given:
        why = f"give arrivalRate or {', '.join(given)}, not both: an open model starts "
        raise SpecError("arrivalRate", rate, why + "iterations on its schedule, not users")
    arrival_rate = float(converted("arrival_rate", rate)) if rate is not None else 0.0
    rate_plan = plan is not None and is_rate_plan(stages(plan))
    max_users = get_field(spec, "maxUsers", int)
    if max_users is not None and not (arrival_rate or rate_plan):
        allowed = "use it with arrivalRate or a plan of rates (an open model's pool of users)"
        raise SpecError("maxUsers", max_users, allowed)
    iterations = get_field(spec, "iterations", int)
    if iterations is not None and (plan is not None or rate is not None):
        raise SpecError("iterations", iterations, "use it with users and runTime, not a plan")
    return (
        arrival_rate,
        converted("max_users", max_users) if max_users is not None else None,
        converted("iterations", iterations) if iterations is not None else None,
    )


def load(spec: dict[str, Any]) -> tuple[str | None, int, float, float]:
    """(plan, users, run time, hatch rate): a ``plan``, or ``users`` and ``runTime`` (and
    ``hatchRate``), or ``arrivalRate`` and ``runTime``: the plan says the users (or rates),
    their rate and the end."""
    text = get_field(spec, "plan", str)
    if text is not None:
        steady = [key for key in ("users", "hatchRate", "runTime") if spec.get(key) is not None]
        if steady:
            why = f"give plan or {', '.join(steady)}, not both: the plan says the users, their "
            raise SpecError("plan", text, why + "rate and the end")
        plan: str = engine_value("test_plan", text)
        steps = stages(plan)
        return plan, max(step.users for step in steps), sum(step.seconds for step in steps), 1.0
    if spec.get("arrivalRate") is not None:  # an open model: the schedule, no users
        run_time = get_field(spec, "runTime", (str, int))
        if run_time is None:
            raise SpecError("runTime", None, "give how long the arrivals go on, e.g. 30s or 10m")
        return None, 0, engine_value("run_time", run_time), 1.0
    users = get_field(spec, "users", int)
    if users is None:
        raise SpecError("users", None, "give the number of users (a whole number ≥ 1), or a plan")
    run_time = get_field(spec, "runTime", (str, int))
    if run_time is None:
        raise SpecError("runTime", None, "give a run time such as 30s, 10m or 1h30m")
    run_seconds = engine_value("run_time", run_time)
    if not run_seconds > 0:
        raise SpecError("runTime", run_time, "use a run time > 0, e.g. 30s, 10m or 1h30m")
    hatch_rate = engine_value("hatch_rate", get_field(spec, "hatchRate", (int, float), 1))
    return None, engine_value("users", users), run_seconds, hatch_rate


def check_replicas_hold(spec: dict[str, Any], load: RunConfig, replicas: int) -> None:
    """The users and arrivals split over ``replicas`` workers, at most what each holds: the
    engine's rule (``check_shares``), which the manager's ``--expect-workers`` applies too."""
    try:
        check_shares(load, replicas, more="raise workers.replicas")
    except ConfigError as error:
        field = _SPEC_FIELD[error.option]
        raise SpecError(field, spec.get(field), error.allowed) from None
