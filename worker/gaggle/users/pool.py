"""The users of one event loop: what both load models' pools share, and the closed model's.

``Pool`` holds what a user needs from its task set (its task plan, a new HTTP client) and every
user task started, for both pools: ``UserPool`` here and the open model's ``ArrivalPool``
(``users.arrival_pool``).

``UserPool`` keeps its users by slot, started and stopped one by one as the load changes. A slot is
a user's index in the whole run (in Gaggle mode, the gaggle's), and its task set is the
allocation's entry for that index. A new user takes the lowest free slot (the pool's first, then
the next, when none is free) and a plan that lowers the users stops the highest first — the last
started — so the running slots stay the allocation's first entries and the task-set weights stay
balanced as the crowd shrinks and grows. A stopped user finishes its request in flight and runs
its on_stop tasks; until then it still counts as running. When the run stops, ``end_users`` gives
them --stop-timeout to do so, then cancels the rest.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
from collections.abc import Callable, Sequence
from typing import ClassVar

from gaggle.http import CLIENTS, HttpClient
from gaggle.kits import StopSignal
from gaggle.taskset import TaskSet
from gaggle.users.allocation import allocation_cycle
from gaggle.users.context import RunContext
from gaggle.users.user import Iterations, TaskPlan, User, run_user

log = logging.getLogger(__name__)
# After the cancel: how long a cancelled user may take to unwind (close its client) before the
# run ends without it (a task that catches CancelledError and goes on would hold it forever).
CANCEL_GRACE = 2.0


class Pool:
    """Users of the run's task sets on this event loop: each user's task, from its start on."""

    def __init__(self, ctx: RunContext, tasksets: list[type[TaskSet]], hosts: list[str]) -> None:
        self.ctx, self.tasksets, self.hosts = ctx, tasksets, hosts
        self._plans = [TaskPlan(ts) for ts in tasksets]
        self._clients: list[Callable[[], HttpClient]] = [
            CLIENTS[ts.client or ctx.config.http_client] for ts in tasksets
        ]
        self.tasks: list[asyncio.Task[None]] = []  # every user ever started

    @property
    def started(self) -> int:
        """Users started so far, ended or not."""
        return len(self.tasks)

    def alive(self) -> int:
        """Users whose task has not ended: the running ones and those still stopping."""
        return sum(1 for task in self.tasks if not task.done())

    def busy(self) -> list[asyncio.Task[None]]:
        """The users whose task has not ended."""
        return [task for task in self.tasks if not task.done()]

    def _user(self, slot: int, taskset_index: int) -> User:
        client = self._clients[taskset_index]()
        return User(self.ctx, slot, taskset_index, self.hosts[taskset_index], client)

    def _run(self, user: User, iterations: Iterations) -> asyncio.Task[None]:
        """Start ``user``'s task: its task set's lifecycle, its passes as ``iterations`` says."""
        index = user.taskset_index
        task = asyncio.get_running_loop().create_task(
            run_user(self.ctx, self.tasksets[index], self._plans[index], user, iterations)
        )
        self.tasks.append(task)
        return task


class UntilStopped(Iterations):
    """A closed model's user: pass after pass until it is stopped, or --iterations passes."""

    __slots__ = ("_idle", "_left", "_stop")
    whole: ClassVar[bool] = False

    def __init__(self, stop: StopSignal, iterations: int, plan: TaskPlan) -> None:
        self._stop = stop
        # an empty cycle and no limit: no pass at all, the user waits for its stop
        self._idle = not iterations and not (plan.sequenced or plan.shuffled)
        self._left = 0 if self._idle else iterations or -1  # -1: no limit

    def begin(self) -> bool:
        if self._stop.is_set() or self._left == 0:
            return False
        if self._left > 0:
            self._left -= 1
        return True

    async def wait(self) -> bool:
        if self._idle:
            await self._stop.wait()
        return False

    def abandon(self) -> None:
        pass  # it took nothing that another user must run


class UserPool(Pool):
    """A closed model's users by slot; slots from ``first_slot`` on (a worker's share's first)."""

    def __init__(
        self,
        ctx: RunContext,
        tasksets: list[type[TaskSet]],
        hosts: list[str],
        rng: random.Random,
        first_slot: int = 0,
    ) -> None:
        super().__init__(ctx, tasksets, hosts)
        self.rng = rng
        self.first_slot = first_slot
        self._weights = [ts.weight for ts in tasksets]
        self._allocation: list[int] = []
        self._free: list[int] = []  # slots given back, lowest first
        self._next_slot = first_slot
        self.running: dict[int, tuple[User, asyncio.Task[None]]] = {}  # not asked to stop

    # --- which task set a slot runs ---------------------------------------------------------
    def taskset_of(self, slot: int) -> int:
        while len(self._allocation) <= slot:
            self._allocation.extend(
                allocation_cycle(self._weights, self.ctx.config.scheduler, self.rng)
            )
        return self._allocation[slot]

    # --- counts -----------------------------------------------------------------------------
    @property
    def target(self) -> int:
        """Users started and not asked to stop (some may have ended by themselves)."""
        return len(self.running)

    # --- changes ----------------------------------------------------------------------------
    def start(self, slot: int | None = None) -> int:
        """Start a user in ``slot`` (default: the lowest free one); returns the slot."""
        if slot is None:
            slot = heapq.heappop(self._free) if self._free else self._next_slot
        elif slot in self._free:
            self._free.remove(slot)
            heapq.heapify(self._free)
        self._next_slot = max(self._next_slot, slot + 1)
        ctx, ts_index = self.ctx, self.taskset_of(slot)
        log.info("launching user %d from %s...", slot + 1, self.tasksets[ts_index].__name__)
        user = self._user(slot, ts_index)
        if ctx.stop.is_set():
            user.stop.set(ctx.stop.reason)
        iterations = UntilStopped(user.stop, ctx.config.iterations, self._plans[ts_index])
        task = self._run(user, iterations)
        task.add_done_callback(lambda _: self._ended(slot, task))
        self.running[slot] = (user, task)
        return slot

    def stop(self, slot: int | None = None, reason: str = "fewer users") -> int | None:
        """Ask the user in ``slot`` (default: the last started) to stop; returns its slot."""
        if slot is None:
            slot = max(self.running, default=None)
        if slot is None or slot not in self.running:
            return None
        user, _ = self.running.pop(slot)
        log.info("stopping user %d: %s", slot + 1, reason)
        user.stop.set(reason)
        heapq.heappush(self._free, slot)
        return slot

    def resize(self, users: int) -> None:
        """Start or stop users until ``users`` run."""
        while self.target < users:
            self.start()
        while self.target > users:
            self.stop()

    def stop_all(self, reason: str) -> None:
        """The run stops: every running user (those asked earlier are stopping already)."""
        for user, _ in self.running.values():
            user.stop.set(reason)

    def _ended(self, slot: int, task: asyncio.Task[None]) -> None:
        """A user ended by itself (its iterations, or its __init__ raised): free its slot."""
        entry = self.running.get(slot)
        if entry is not None and entry[1] is task:
            del self.running[slot]
            heapq.heappush(self._free, slot)


class Hatch:
    """-u users hatched into a pool, for ``load.drive_users.pace`` to start one by one.

    Each slot from the pool's first on starts once, in order, and ``target`` counts the users
    launched: one that ends by itself meanwhile (its --iterations passes, or its ``__init__``
    raised) is not started again, as the pool's ``resize`` would to keep a plan's users running.
    """

    __slots__ = ("pool", "target")

    def __init__(self, pool: UserPool) -> None:
        self.pool = pool
        self.target = 0  # users launched

    def resize(self, users: int) -> None:
        while self.target < users:
            self.pool.start(self.pool.first_slot + self.target)
            self.target += 1


async def end_users(pools: Sequence[Pool], timeout: float) -> int:
    """The run stopped: until every user of ``pools`` has ended, ``timeout`` seconds at most
    (--stop-timeout; 0: at once). Then the users still running are cancelled, and what they were
    doing is counted abandoned (``users.user``: the request in flight, the task). Returns how
    many were cancelled."""
    busy = [task for pool in pools for task in pool.busy()]
    if busy and timeout > 0:
        await asyncio.wait(busy, timeout=timeout)
    late = [task for pool in pools for task in pool.busy()]  # any started since, too
    if late:
        log.warning(
            "%d user(s) still running %g s after the stop (--stop-timeout): cancelled; their "
            "requests in flight and tasks are counted abandoned",
            len(late),
            timeout,
        )
        for task in late:
            task.cancel()
        _, stubborn = await asyncio.wait(late, timeout=CANCEL_GRACE)
        if stubborn:
            log.warning(
                "%d user(s) went on after the cancel; the run ends without them", len(stubborn)
            )
    for pool in pools:  # collect every ended user's outcome, so none is reported as unretrieved
        for task in pool.tasks:
            if task.done() and not task.cancelled():
                task.exception()
    return len(late)
