"""How an open model starts its arrivals: on the timetable's instants, whatever the target's
speed, and how a plan of rates marks its stages.

The driver only says *when* arrival *k* is due; an ``Arrivals`` — the users of this event loop
(``users.arrival_pool.ArrivalPool``) — runs it or drops it. A manager runs no arrivals: each
worker follows the same timetable and takes its turns (every stride-th number from its first).
"""

from __future__ import annotations

import math
import time
from typing import Protocol

from gaggle.kits import StopSignal
from gaggle.load.stages import PlanStage
from gaggle.load.timetable import Timetable


class Arrivals(Protocol):
    """What takes the arrivals as they fall due."""

    def arrive(self, number: int, due: float) -> bool:
        """Arrival ``number`` came due at ``due`` (perf_counter): run it, or drop it."""
        ...


class StageMarks(Protocol):
    """What the run hears of a rate plan (the session: timeline marks)."""

    def stage_began(self, label: str, users: int) -> None: ...


def stage_label(number: int, stage: PlanStage) -> str:
    return f"stage {number} ({stage.text}): {stage.rate or 0:g}/s in {stage.seconds:g} s"


async def mark_stages(
    stages: tuple[PlanStage, ...], stop: StopSignal, driven: StageMarks, started: float
) -> None:
    """Mark each rate stage as it begins, on the plan's fixed grid from ``started``
    (perf_counter); returns once the last has begun."""
    begins = 0.0
    for number, stage in enumerate(stages, start=1):
        await stop.sleep(started + begins - time.perf_counter())
        if stop.is_set():
            return
        driven.stage_began(stage_label(number, stage), 0)
        begins += stage.seconds


async def follow_arrivals(
    timetable: Timetable,
    pool: Arrivals,
    stop: StopSignal,
    origin: float,
    turns: tuple[int, int] = (0, 1),
    joined: float = 0.0,
) -> str:
    """Start this role's arrivals — ``turns`` is (first, stride): every stride-th number from
    first — as ``timetable`` says, ``origin`` being the run's start (perf_counter), from
    ``joined`` seconds in (a late worker skips what was due before it came) until the last
    schedule is over or the run stops; returns why the run ends. A late wake-up starts every
    arrival due by then at once, each with its own instant, so the count never stretches and
    the lag shows how late they were. A change to the timetable wakes it to follow the new one."""
    first, stride = turns
    number, cursor = timetable.number_at(joined), joined  # the next number, the last instant
    while not stop.is_set():
        version, segment = timetable.version, timetable.in_force(cursor)
        if stride >= 1:
            for arrival, due in timetable.arrivals(segment, number, first, stride):
                wait = origin + due - time.perf_counter()
                if wait > 0:
                    await stop.sleep(wait, woken_by=timetable.sleepers)
                if stop.is_set() or timetable.version != version:
                    break
                pool.arrive(arrival, origin + due)
                number, cursor = arrival + 1, due
        if stop.is_set() or timetable.version != version:
            continue  # stopped, or follow what replaced the schedule
        following = timetable.next_after(segment)
        if not math.isinf(following):  # on to the next segment
            cursor = max(cursor, following)
            continue
        ends = timetable.ends
        wait = math.inf if math.isinf(ends) else origin + ends - time.perf_counter()
        if wait > 0:
            await stop.sleep(wait if not math.isinf(wait) else 1e9, woken_by=timetable.sleepers)
        if timetable.version == version and not stop.is_set():
            return timetable.ends_run
    return stop.reason
