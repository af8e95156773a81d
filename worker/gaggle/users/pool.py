"""The users of one event loop, by slot: started and stopped one by one as the load changes.

A slot is a user's index in the whole run (in Gaggle mode, the gaggle's), and its task set is
the allocation's entry for that index. A new user takes the lowest free slot and a plan that
lowers the users stops the highest first — the last started — so the running slots stay the
allocation's first entries and the task-set weights stay balanced as the crowd shrinks and
grows. A stopped user finishes its request in flight and runs its on_stop tasks; until then it
still counts as running.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
from collections.abc import Callable

from gaggle.http import CLIENTS
from gaggle.http.seam import HttpClient
from gaggle.taskset import TaskSet
from gaggle.users.allocation import allocation_cycle
from gaggle.users.context import RunContext
from gaggle.users.user import TaskPlan, User, run_user

log = logging.getLogger("gaggle")


class UserPool:
    def __init__(
        self,
        ctx: RunContext,
        tasksets: list[type[TaskSet]],
        hosts: list[str],
        rng: random.Random,
    ) -> None:
        self.ctx, self.tasksets, self.hosts, self.rng = ctx, tasksets, hosts, rng
        config = ctx.config
        self._plans = [TaskPlan(ts) for ts in tasksets]
        self._clients: list[Callable[[], HttpClient]] = [
            CLIENTS[ts.client or config.http_client] for ts in tasksets
        ]
        self._weights = [ts.weight for ts in tasksets]
        self._allocation: list[int] = []
        self._free: list[int] = []  # slots given back, lowest first
        self._next_slot = 0
        self.running: dict[int, tuple[User, asyncio.Task[None]]] = {}  # not asked to stop
        self.tasks: list[asyncio.Task[None]] = []  # every user ever started
        self.started = 0

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

    def alive(self) -> int:
        """Users whose task has not ended: the running ones and those still stopping."""
        return sum(1 for task in self.tasks if not task.done())

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
        taskset = self.tasksets[ts_index]
        log.info("launching user %d from %s...", slot + 1, taskset.__name__)
        user = User(ctx, slot, ts_index, self.hosts[ts_index], self._clients[ts_index]())
        if ctx.stop.is_set():
            user.stop.set(ctx.stop.reason)
        task = asyncio.get_running_loop().create_task(
            run_user(ctx, taskset, self._plans[ts_index], user)
        )
        task.add_done_callback(lambda _: self._ended(slot, task))
        self.running[slot] = (user, task)
        self.tasks.append(task)
        self.started += 1
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

    async def wait(self) -> None:
        """Until every user started so far has ended."""
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
