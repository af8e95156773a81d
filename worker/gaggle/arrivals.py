"""The open model on one event loop: iterations start on the arrival schedule, whatever the
target's speed.

Each due arrival takes a free user of its task set (arrival *k* runs the task set the allocation
gives index *k*, so the weights hold), which runs one pass of its cycle and is free again. When
none is free a new user joins the pool — it runs ``on_start`` once, then the iteration — up to
``--max-users``; past that the arrival is dropped and counted, never lost. How late each
iteration began against its instant is the schedule lag, and its first request is timed from the
instant (``User.intended_start``), so a stalled target shows its stall (wrk2's correction).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from gaggle.context import RunContext
from gaggle.http import CLIENTS
from gaggle.http.seam import HttpClient
from gaggle.plan import PlanStage
from gaggle.scheduler import allocation_cycle
from gaggle.stop import StopSignal
from gaggle.taskset import TaskSet
from gaggle.timetable import Timetable
from gaggle.user import TaskPlan, User, pause, run_task

log = logging.getLogger("gaggle")


@dataclass(eq=False, slots=True)
class PooledUser:
    user: User
    taskset_index: int
    # the next arrival's instant (perf_counter), or None: the run is over
    next_due: asyncio.Future[float | None] | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class ArrivalPool:
    """The users that arrivals take, growing up to ``max_users`` (user numbers from
    ``first_user``, as a gaggle numbers its workers' users)."""

    def __init__(
        self,
        ctx: RunContext,
        tasksets: list[type[TaskSet]],
        hosts: list[str],
        rng: random.Random,
        max_users: int,
        first_user: int = 0,
    ) -> None:
        self.ctx, self.tasksets, self.hosts = ctx, tasksets, hosts
        self.max_users, self.first_user = max_users, first_user
        self._plans = [TaskPlan(ts) for ts in tasksets]
        self._clients: list[Callable[[], HttpClient]] = [
            CLIENTS[ts.client or ctx.config.http_client] for ts in tasksets
        ]
        self._allocation = allocation_cycle(
            [ts.weight for ts in tasksets], ctx.config.scheduler, rng
        )
        self._free: list[list[PooledUser]] = [[] for _ in tasksets]
        self.users: list[PooledUser] = []
        self.tasks: list[asyncio.Task[None]] = []

    @property
    def started(self) -> int:
        return len(self.users)

    def alive(self) -> int:
        return sum(1 for task in self.tasks if not task.done())

    def arrive(self, number: int, due: float) -> bool:
        """Arrival ``number`` came due at ``due``: a free user runs it, or it is dropped."""
        if self.ctx.stop.is_set():
            return False
        taskset_index = self._allocation[number % len(self._allocation)]
        free = self._free[taskset_index]
        if free:
            pooled = free.pop()
            if pooled.next_due is not None and not pooled.next_due.done():
                pooled.next_due.set_result(due)
                return True
        if len(self.users) >= self.max_users:
            self.ctx.aggregator.record_dropped()
            return False
        self._add(taskset_index, due)
        return True

    def _add(self, taskset_index: int, due: float) -> None:
        ctx, slot = self.ctx, self.first_user + len(self.users)
        user = User(
            ctx, slot, taskset_index, self.hosts[taskset_index], self._clients[taskset_index]()
        )
        pooled = PooledUser(user, taskset_index)
        log.info("pool: user %d from %s", slot + 1, self.tasksets[taskset_index].__name__)
        pooled.task = asyncio.get_running_loop().create_task(self._serve(pooled, due))
        self.users.append(pooled)
        self.tasks.append(pooled.task)

    async def _serve(self, pooled: PooledUser, first_due: float) -> None:
        """A pooled user: ``on_start`` once, an iteration per arrival, ``on_stop`` at the end."""
        ctx, user = self.ctx, pooled.user
        taskset = self.tasksets[pooled.taskset_index]
        plan = self._plans[pooled.taskset_index]
        instance = taskset.__new__(taskset)
        instance._gaggle = user
        wait_time = taskset.wait_time
        # An arrival taken runs whole, as k6's iterations do: the run's stop only skips pauses,
        # so every started arrival is one pass of the cycle (a new user's on_start first).
        user.may_request_while_stopping = True
        due: float | None = first_due
        try:
            taskset.__init__(instance)
            for position, (index, spec) in enumerate(plan.on_start):
                seconds = await run_task(ctx, user, instance, index, spec)
                if position < len(plan.on_start) - 1:
                    await pause(ctx, user, wait_time, seconds)
            while due is not None:
                ctx.aggregator.record_lag(int(max(0.0, time.perf_counter() - due) * 1_000_000))
                user.intended_start, due = due, None
                cycle = plan.cycle()
                for position, (index, spec) in enumerate(cycle):
                    seconds = await run_task(ctx, user, instance, index, spec)
                    if position < len(cycle) - 1:  # the iteration ends with its last task
                        await pause(ctx, user, wait_time, seconds)
                user.intended_start = None  # a cycle without requests leaves none behind
                due = await self._next_arrival(pooled)
            for index, spec in plan.on_stop:
                await run_task(ctx, user, instance, index, spec)
        except Exception as error:  # __init__ raised: count it, the pool goes on without it
            ctx.task_failed(f"{taskset.__name__}.__init__", error)
            if due is not None:  # the arrival it took never started: dropped, not lost
                ctx.aggregator.record_dropped()
        finally:
            await user.close()

    async def _next_arrival(self, pooled: PooledUser) -> float | None:
        if pooled.user.stop.is_set():
            return None
        pooled.next_due = asyncio.get_running_loop().create_future()
        self._free[pooled.taskset_index].append(pooled)
        return await pooled.next_due

    def stop_all(self, reason: str) -> None:
        """The run stops: busy users finish their iteration, free ones wake to stop."""
        for pooled in self.users:
            pooled.user.stop.set(reason)
            if pooled.next_due is not None and not pooled.next_due.done():
                pooled.next_due.set_result(None)

    async def wait(self) -> None:
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)


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
    pool: ArrivalPool,
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
