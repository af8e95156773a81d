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
from typing import ClassVar

from gaggle.metrics import Aggregator
from gaggle.taskset import TaskSet
from gaggle.users.allocation import allocation_cycle
from gaggle.users.context import RunContext
from gaggle.users.pool import Pool
from gaggle.users.user import Iterations, User

log = logging.getLogger(__name__)


class PerArrival(Iterations):
    """A pooled user's passes: one per arrival it takes, free for the next one in between."""

    __slots__ = ("_aggregator", "_due", "_free", "next_due", "user")
    whole: ClassVar[bool] = True

    def __init__(
        self, user: User, due: float, free: list[PerArrival], aggregator: Aggregator
    ) -> None:
        self.user = user
        self._free = free  # the free users of its task set, where it waits between arrivals
        self._aggregator = aggregator
        self._due: float | None = due  # an arrival taken whose pass has not begun
        # the next arrival's instant (perf_counter), or None: the run is over
        self.next_due: asyncio.Future[float | None] | None = None

    def begin(self) -> bool:
        due, self._due = self._due, None
        if due is None:
            self.user.intended_start = None  # a cycle without requests leaves none behind
            return False
        self._begin(due)
        return True

    async def wait(self) -> bool:
        if self.user.stop.is_set():
            return False
        self.next_due = asyncio.get_running_loop().create_future()
        self._free.append(self)
        due = await self.next_due
        if due is None:
            return False
        self._begin(due)
        return True

    def abandon(self) -> None:
        if self._due is not None:  # the arrival it took never started: dropped, not lost
            self._aggregator.record_dropped()

    def _begin(self, due: float) -> None:
        """The pass of the arrival due at ``due`` begins: how late is the schedule lag, and its
        first request is timed from ``due``."""
        self._aggregator.record_lag(int(max(0.0, time.perf_counter() - due) * 1_000_000))
        self.user.intended_start = due


class ArrivalPool(Pool):
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
        super().__init__(ctx, tasksets, hosts)
        self.max_users, self.first_user = max_users, first_user
        self._allocation = allocation_cycle(
            [ts.weight for ts in tasksets], ctx.config.scheduler, rng
        )
        self._free: list[list[PerArrival]] = [[] for _ in tasksets]  # by task set
        self.users: list[PerArrival] = []

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
        slot = self.first_user + len(self.users)
        user = self._user(slot, taskset_index)
        pooled = PerArrival(user, due, self._free[taskset_index], self.ctx.aggregator)
        log.info("pool: user %d from %s", slot + 1, self.tasksets[taskset_index].__name__)
        self._run(user, pooled)
        self.users.append(pooled)

    def stop_all(self, reason: str) -> None:
        """The run stops: busy users finish their iteration, free ones wake to stop."""
        for pooled in self.users:
            pooled.user.stop.set(reason)
            if pooled.next_due is not None and not pooled.next_due.done():
                pooled.next_due.set_result(None)
