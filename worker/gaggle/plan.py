"""``--test-plan``: Goose's staged plan of a closed model, ``"10,1m;10,5m;0,30s"``.

Each stage is ``USERS,DURATION``: from the users the previous stage ended with (0 at the start)
go linearly to USERS over DURATION; the run ends with the last stage. A plan is kept as its
canonical text (seconds: ``"10,60;10,300;0,30"``) so a RunConfig stays plain data that a manager
can send its workers; ``stages()`` reads it back.

The stage grammar leaves room for an open model's stages (``100/s,1m``: arrivals per second);
until that exists such a stage is refused as malformed, like any other.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from gaggle.converters import ConfigError, parse_duration

FORM = "use USERS,DURATION stages separated by ';', e.g. 10,1m;10,5m;0,30s"
_USERS = re.compile(r"^\d+$")


@dataclass(frozen=True, slots=True)
class PlanStage:
    users: int  # where the stage ends
    seconds: float  # how long it takes to get there (0: at once)


def _format_seconds(seconds: float) -> str:
    return str(int(seconds)) if seconds == int(seconds) else repr(seconds)


def canonical(stages: tuple[PlanStage, ...]) -> str:
    return ";".join(f"{stage.users},{_format_seconds(stage.seconds)}" for stage in stages)


def parse_stages(option: str, value: object) -> tuple[PlanStage, ...]:
    """Every stage of a plan's text, or ConfigError naming the first bad stage."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(option, value, FORM)
    stages: list[PlanStage] = []
    for number, text in enumerate(value.strip().rstrip(";").split(";"), start=1):
        users, comma, duration = text.strip().partition(",")
        seconds = -1.0
        if comma and _USERS.match(users.strip()):
            try:
                seconds = parse_duration(option, duration.strip())
            except ConfigError:
                seconds = -1.0
        if seconds < 0:
            raise ConfigError(
                option,
                value,
                FORM,
                f"{option}: stage {number} {text.strip()!r} of {value!r} is not allowed; "
                f"{FORM} (USERS a whole number ≥ 0, DURATION such as 30s, 1m, 1h30m, 0.5s "
                "or seconds)",
            )
        stages.append(PlanStage(int(users), seconds))
    return tuple(stages)


def plan_text(option: str, value: object) -> str:
    """The converter of ``--test-plan``: the plan checked, in its canonical text."""
    return canonical(parse_stages(option, value))


def stages(text: str) -> tuple[PlanStage, ...]:
    """A canonical plan's stages (the text was checked when the config was built)."""
    return parse_stages("--test-plan", text)


def first_full_stage(plan: tuple[PlanStage, ...]) -> int | None:
    """The index of the first stage that ends with users running: the metrics reset at its
    end, the moment the plan has first brought up the users it asked for."""
    return next((index for index, stage in enumerate(plan) if stage.users > 0), None)


STEADY_KEYS = ("users", "hatch_rate", "run_time")  # what a --test-plan replaces


def plan_or_steady(layers: list[dict[str, object]], flag_of: Callable[[str], str]) -> None:
    """A plan and -u/-r/-t in one layer contradict each other; across layers the later one wins
    (a command line's ``-u`` over a program's default plan, or its plan over a default ``-u``)."""
    plan_at = max((i for i, layer in enumerate(layers) if "test_plan" in layer), default=-1)
    if plan_at < 0:
        return
    for index, layer in enumerate(layers):
        steady = [key for key in STEADY_KEYS if key in layer]
        if index == plan_at and steady:
            flag = flag_of(steady[0])
            raise ConfigError(
                "--test-plan",
                layer["test_plan"],
                "",
                f"--test-plan and {flag} do not go together: the plan says the users, their "
                "rate and the run time; give one or the other",
            )
        if index == plan_at and "iterations" in layer:
            raise ConfigError(
                "--test-plan",
                layer["test_plan"],
                "",
                "--test-plan and --iterations do not go together: the plan ends the run, "
                "iterations end each user; give one or the other",
            )
        if index < plan_at:
            for key in (*STEADY_KEYS, "iterations"):
                layer.pop(key, None)
        elif index > plan_at and (steady or "iterations" in layer):
            for earlier in layers[: plan_at + 1]:
                earlier.pop("test_plan", None)
            return
