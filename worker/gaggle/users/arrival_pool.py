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
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gaggle.http import CLIENTS
from gaggle.http.seam import HttpClient
from gaggle.taskset import TaskSet
from gaggle.users.allocation import allocation_cycle
from gaggle.users.context import RunContext
from gaggle.users.user import TaskPlan, User, pause, run_task

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
