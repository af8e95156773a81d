"""How the closed model's number of users moves over time: -u at -r, a staged plan, a load shape.

The drivers only say how many users should run; a ``Crowd`` makes it so — the users of this
event loop (``users.pool.UserPool``; its ``Hatch`` for -u, which starts each user once) or, on a
manager, the workers' (``distributed.worker_crowd``). So the same plan drives a standalone run
and a gaggle. The open model is driven by its arrivals instead (``load.drive_arrivals``).

Every change is paced by ``pace``, on a fixed grid from its start: change *i* of *n* over *d*
seconds is due at ``i·d/n``. A loop that woke late makes every change due by then at once, so a
busy loop delays no stage's end.
"""

from __future__ import annotations

import asyncio
import math
from typing import Protocol

from gaggle.kits import StopSignal
from gaggle.load.shape import LoadShape, Stage, checked_stage, new_shape
from gaggle.load.stages import PlanStage, canonical


class Crowd(Protocol):
    """The users a driver steers."""

    @property
    def target(self) -> int:
        """Users asked to run now."""
        ...

    def resize(self, users: int) -> None:
        """Start or stop users until ``users`` are asked to run."""
        ...


class Driven(Protocol):
    """What the run hears from its driver (the session: timeline marks, the metrics reset)."""

    def stage_began(self, label: str, users: int) -> None: ...

    def stage_reached(self, users: int) -> None:
        """The users a stage asked for run (the first time: the reset)."""
        ...


async def pace(
    crowd: Crowd, users: int, started: float, seconds_each: float, stop: StopSignal
) -> bool:
    """Move ``crowd`` one user at a time to ``users``, change *i* due at ``started + i ·
    seconds_each`` (loop time); False when the run stopped first."""
    loop = asyncio.get_running_loop()
    begin = crowd.target
    changes = abs(users - begin)
    step = 1 if users > begin else -1
    done = 0
    while done < changes:
        if stop.is_set():
            return False
        now = loop.time()
        elapsed = now - started
        due = changes if seconds_each <= 0 else min(changes, math.floor(elapsed / seconds_each) + 1)
        if due > done:
            crowd.resize(begin + step * due)
            done = due
            continue
        await stop.sleep(started + done * seconds_each - now)
    return not stop.is_set()


async def follow_plan(
    plan: tuple[PlanStage, ...], crowd: Crowd, stop: StopSignal, driven: Driven
) -> None:
    """Every stage in turn; returns when the plan is over or the run stopped."""
    loop = asyncio.get_running_loop()
    stage_started = loop.time()
    for number, stage in enumerate(plan, start=1):
        text = canonical((stage,))
        label = f"stage {number} ({text}): {stage.users} users in {stage.seconds:g} s"
        driven.stage_began(label, stage.users)
        changes = abs(stage.users - crowd.target)
        seconds_each = stage.seconds / changes if changes else 0.0
        if not await pace(crowd, stage.users, stage_started, seconds_each, stop):
            return
        stage_ends = stage_started + stage.seconds
        await stop.sleep(stage_ends - loop.time())
        if stop.is_set():
            return
        if stage.users > 0:
            driven.stage_reached(stage.users)
        stage_started = stage_ends  # on the grid: a late wake-up does not push later stages


async def follow_shape(
    shape_class: type[LoadShape], crowd: Crowd, stop: StopSignal, driven: Driven
) -> None:
    """Tick until the shape says None or the run stopped; a bad tick raises
    TestDefinitionError (its message names the class and the elapsed time)."""
    shape = new_shape(shape_class)
    loop = asyncio.get_running_loop()
    started = loop.time()
    ramp: asyncio.Task[None] | None = None
    current: Stage | None = None
    ticks = 0
    try:
        while not stop.is_set():
            stage = checked_stage(shape, loop.time() - started)
            if stage is None:
                return
            if stage != current:
                current = stage
                if ramp is not None:
                    ramp.cancel()
                label = f"{shape_class.__name__}: {stage.users} users, {stage.hatch_rate:g}/s"
                driven.stage_began(label, stage.users)
                ramp = loop.create_task(_ramp(crowd, stage, stop, driven))
            ticks += 1
            await stop.sleep(started + ticks * shape.tick_interval - loop.time())
    finally:
        if ramp is not None:
            ramp.cancel()


async def _ramp(crowd: Crowd, stage: Stage, stop: StopSignal, driven: Driven) -> None:
    started = asyncio.get_running_loop().time()
    if await pace(crowd, stage.users, started, 1 / stage.hatch_rate, stop) and stage.users:
        driven.stage_reached(stage.users)
