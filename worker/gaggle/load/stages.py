"""A staged plan (``--test-plan``): Goose's staged plan of a closed model, ``"10,1m;10,5m;0,30s"``.

Each stage is ``USERS,DURATION``: from the users the previous stage ended with (0 at the start)
go linearly to USERS over DURATION; the run ends with the last stage. A plan is kept as its
canonical text (seconds: ``"10,60;10,300;0,30"``) so a RunConfig stays plain data that a manager
can send its workers; ``stages()`` reads it back. The text a user writes is read and checked by
``options.converters.parse_stages``.

An open model's plan has rate stages instead, ``RATE/s,DURATION`` (``"100/s,1m;500/s,5m"``):
iterations started per second, going linearly from the previous stage's rate (0 at first), as
k6's ramping-arrival-rate does. A plan is all users or all rates; a mix is refused naming the
first stage of the other kind.
"""

from __future__ import annotations

from dataclasses import dataclass


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


def stages(text: str) -> tuple[PlanStage, ...]:
    """A canonical plan's stages: ``"10,60;0,30"`` or ``"100/s,60"`` (the text was checked,
    and written in seconds, when the config was built: ``options.converters.plan_text``)."""
    result = []
    for stage in text.split(";"):
        where, _, seconds = stage.partition(",")
        if where.endswith("/s"):
            result.append(PlanStage(0, float(seconds), float(where[:-2])))
        else:
            result.append(PlanStage(int(where), float(seconds)))
    return tuple(result)


def peak_users(plan: tuple[PlanStage, ...]) -> int:
    return max(stage.users for stage in plan)
