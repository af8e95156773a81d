"""``--test-plan``: Goose's staged plan of a closed model, ``"10,1m;10,5m;0,30s"``.

Each stage is ``USERS,DURATION``: from the users the previous stage ended with (0 at the start)
go linearly to USERS over DURATION; the run ends with the last stage. A plan is kept as its
canonical text (seconds: ``"10,60;10,300;0,30"``) so a RunConfig stays plain data that a manager
can send its workers; ``stages()`` reads it back.

An open model's plan has rate stages instead, ``RATE/s,DURATION`` (``"100/s,1m;500/s,5m"``):
iterations started per second, going linearly from the previous stage's rate (0 at first), as
k6's ramping-arrival-rate does. A plan is all users or all rates; a mix is refused naming the
first stage of the other kind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gaggle.converters import ConfigError, parse_duration

FORM = (
    "use USERS,DURATION stages separated by ';', e.g. 10,1m;10,5m;0,30s (or an open model's "
    "RATE/s,DURATION stages, e.g. 100/s,1m;500/s,5m;0/s,30s)"
)
_USERS = re.compile(r"^\d+$")
_RATE = re.compile(r"^(\d+(?:\.\d+)?)/s$")


@dataclass(frozen=True, slots=True)
class PlanStage:
    users: int  # where the stage ends (0 in a rate stage)
    seconds: float  # how long it takes to get there (0: at once)
    rate: float | None = None  # a rate stage: iterations started per second where it ends

    @property
    def text(self) -> str:
        """The stage as canonical text: ``10,60`` or ``100/s,60``."""
        where = str(self.users) if self.rate is None else f"{_format_number(self.rate)}/s"
        return f"{where},{_format_number(self.seconds)}"


def _format_number(seconds: float) -> str:
    return str(int(seconds)) if seconds == int(seconds) else repr(seconds)


def canonical(stages: tuple[PlanStage, ...]) -> str:
    return ";".join(stage.text for stage in stages)


def is_rate_plan(stages: tuple[PlanStage, ...]) -> bool:
    return bool(stages) and stages[0].rate is not None


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
    if _USERS.match(where):
        return PlanStage(int(where), seconds)
    rate = _RATE.match(where)
    return PlanStage(0, seconds, float(rate.group(1))) if rate else None


def parse_stages(option: str, value: object) -> tuple[PlanStage, ...]:
    """Every stage of a plan's text, or ConfigError naming the first bad stage."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(option, value, FORM)
    stages: list[PlanStage] = []
    for number, text in enumerate(value.strip().rstrip(";").split(";"), start=1):
        stage = _stage(option, text.strip())
        if stage is None:
            raise ConfigError(
                option,
                value,
                FORM,
                f"{option}: stage {number} {text.strip()!r} of {value!r} is not allowed; "
                f"{FORM} (USERS a whole number ≥ 0, RATE a number ≥ 0, DURATION such as 30s, "
                "1m, 1h30m, 0.5s or seconds)",
            )
        if stages and (stage.rate is None) != (stages[0].rate is None):
            kinds = ("users", "rates") if stages[0].rate is None else ("rates", "users")
            raise ConfigError(
                option,
                value,
                FORM,
                f"{option}: stage {number} {text.strip()!r} of {value!r} is not allowed; the "
                f"plan's first stage gives {kinds[0]} and this one {kinds[1]}: a plan is all "
                "USERS,DURATION stages (closed model) or all RATE/s,DURATION stages (open model)",
            )
        stages.append(stage)
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


def peak_users(plan: tuple[PlanStage, ...]) -> int:
    return max(stage.users for stage in plan)
