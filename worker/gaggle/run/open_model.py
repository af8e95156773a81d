"""An open model's run-wide state, beside the session: its timetable (the schedule it started
with and what replaced it), the instant it began, and the marks of a plan of rates' stages.

The roles follow the timetable (``arrivals.follow_arrivals``; a manager's workers each their
turns); the control API's steering replaces what is left of it (``replace``): the arrival rate,
a plan of rates, the run time. A manager replaces it a moment ahead (``lead``) and tells its
workers, so that every one of them switches at the same instant.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence

from gaggle.kits import StopSignal
from gaggle.load import (
    PLAN_OVER,
    RUN_TIME_OVER,
    ArrivalSchedule,
    PlanStage,
    Segment,
    StageMarks,
    Timetable,
    mark_stages,
)
from gaggle.options import RunConfig


class OpenModel:
    def __init__(
        self,
        config: RunConfig,
        stop: StopSignal,
        marks: StageMarks,
        segments: Sequence[Segment] = (),  # a late worker's: what its manager follows
    ) -> None:
        ends_run = PLAN_OVER if config.test_plan else RUN_TIME_OVER
        self.timetable = (
            Timetable(segments)
            if segments
            else Timetable.starting(config.arrival_schedule(), ends_run)
        )
        self.stop, self.marks = stop, marks
        self.stages = config.plan_stages  # the first schedule's, marked as each begins
        self.origin: float | None = None  # perf_counter when the schedule began
        self._marking: asyncio.Task[None] | None = None

    def begins(self, joined: float = 0.0) -> None:
        """The schedule starts now (``joined`` seconds into it: a late worker)."""
        self.origin = time.perf_counter() - joined
        self._mark(self.stages, 0.0)

    def offset(self) -> float:
        """Seconds since the schedule began (0 before)."""
        return 0.0 if self.origin is None else time.perf_counter() - self.origin

    def rate_now(self) -> float:
        """Arrivals per second the timetable asks for now (0: not begun, or over)."""
        if self.origin is None or self.stop.is_set():
            return 0.0
        return self.timetable.rate_at(self.offset())

    def remaining(self) -> float | None:
        """Seconds until the last schedule is over (None: only a stop ends it)."""
        ends = self.timetable.ends
        return None if math.isinf(ends) else max(0.0, ends - self.offset())

    def replace(
        self,
        schedule_at: Callable[[float], ArrivalSchedule],
        ends_run: str,
        lead: float = 0.0,
        stages: tuple[PlanStage, ...] | None = (),
    ) -> Segment:
        """From ``lead`` seconds from now on, ``schedule_at(offset)``; a plan's stages are marked
        from then, and the marks of the schedule it replaces stop (``None``: they go on, as
        when only the end moved)."""
        at = self.offset() + lead
        segment = self.timetable.replace(at, schedule_at(at), ends_run)
        if stages is not None:
            self._mark(stages, at)
        return segment

    def rest(self, seconds: float) -> Callable[[float], ArrivalSchedule]:
        """What is left of the timetable, to end ``seconds`` from now (a run time set)."""
        ends_at = self.offset() + seconds

        def rest_at(at: float) -> ArrivalSchedule:
            segment = self.timetable.in_force(at)
            return segment.schedule.rest(at - segment.offset, max(0.0, ends_at - at))

        return rest_at

    def _mark(self, stages: tuple[PlanStage, ...], at: float) -> None:
        if self._marking is not None:
            self._marking.cancel()
            self._marking = None
        if stages and self.origin is not None:
            marking = mark_stages(stages, self.stop, self.marks, self.origin + at)
            self._marking = asyncio.get_running_loop().create_task(marking)

    def close(self) -> None:
        if self._marking is not None:
            self._marking.cancel()
