"""Users on this event loop: the role of a standalone run and of each Gaggle-mode worker.

The flow is the seed's: users start at the hatch rate; once all are running the session prints
the tables so far and resets the metrics (unless --no-reset-metrics), which is also when the run
time starts counting; at the end — run time over, Ctrl-C or SIGTERM — users finish the request in
flight and run their on_stop tasks, for --stop-timeout at most (then they are cancelled and what
they were doing is counted abandoned), and the summary is printed. A second Ctrl-C ends at once.
All of that but the users is ``session.Session``'s, shared with the manager. A --test-plan or a
load shape moves the users instead (``load.drive_users``), and with --iterations the run is over
when every user has run its passes.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Coroutine
from typing import Any

from gaggle.load import follow_arrivals, pace
from gaggle.metrics import Aggregator, Ledger, Metrics, NameGuard, NullAggregator, WatchedTally
from gaggle.report import BufferedLog, open_debug_log, open_requests_log
from gaggle.run.session import Session
from gaggle.run.types import RunPlan, iterations_over
from gaggle.users import ArrivalPool, Hatch, RunContext, Throttle, UserPool, end_users

log = logging.getLogger(__name__)


class Runner(Session):
    def __init__(self, plan: RunPlan) -> None:
        config = plan.config
        aggregator = (
            NullAggregator()
            if config.no_metrics
            else Aggregator(track_tasks=not config.no_task_metrics)
        )
        # A worker ships what its users did to its manager; its own /metrics only reads.
        self.ledger = Ledger(aggregator, shipping=not plan.owns_output)
        guard = NameGuard(config.request_names_limit)  # a worker's manager warns, not the worker
        tally = WatchedTally(self.ledger, guard) if plan.owns_output else self.ledger
        super().__init__(plan, tally)
        self.ctx = RunContext(
            config=config,
            aggregator=aggregator,
            stop=self.stopping,
            throttle=Throttle(config.throttle_requests) if config.throttle_requests else None,
        )
        self.metrics_started = self.ctx.started
        self.pool = UserPool(
            self.ctx, plan.tasksets, plan.hosts, random.Random(plan.seed), plan.first_user
        )
        self.arrivals = ArrivalPool(  # an open model's users (idle in a closed one)
            self.ctx,
            plan.tasksets,
            plan.hosts,
            random.Random(plan.seed),
            config.max_users,
            plan.first_user,
        )
        self.ready = asyncio.Event()  # the logs are open: users may start (a manager's Adjust too)
        self.logs: list[BufferedLog] = []

    def users_running(self) -> int:
        return self.pool.alive() + self.arrivals.alive()

    def users_in_result(self) -> int:
        return self.pool.started + self.arrivals.started

    def user_crowd(self) -> UserPool:
        return self.pool

    def take_delta(self) -> Metrics:
        """A worker's next delta for its manager: what its users did since the last one."""
        return self.ledger.take_delta()

    def _stopping(self, reason: str) -> None:
        self.pool.stop_all(reason)
        self.arrivals.stop_all(reason)

    def adjust(self, start: list[int], stop: list[int]) -> None:
        """A manager's plan: stop the users in ``stop``, start users in ``start`` (slots)."""
        for slot in stop:
            self.pool.stop(slot)
        if self.stopping.is_set():
            return
        for slot in start:
            self.pool.start(slot)

    async def _drive(self) -> bool:
        self._open_logs()
        try:
            self._clock_starts(self.ctx.started)
            self.ready.set()
            self._follow()
            await self.stopping.wait()
            self.steering.close()  # the stop moves every user now
            log.info("stopping (%s); waiting for users to exit", self.stop_reason)
            await end_users((self.pool, self.arrivals), self.plan.config.stop_timeout)
        finally:
            await self._close_logs()
        failure = self.steering.failure  # a load shape's bad tick ended the run
        if failure is not None:
            raise failure
        return True

    def _steady(self) -> Coroutine[Any, Any, None]:
        """-u at -r (a worker: its share, which the manager's adjustments move later)."""
        return self._hatch_users()

    async def _hatch_users(self) -> None:
        if await self._hatch():
            self.hatched()
        if self.plan.config.iterations:
            await self._iterations_done()

    async def _follow_arrivals(self) -> None:
        """The open model: arrivals on the timetable (a worker: its turns), then the end."""
        plan = self.plan
        self.schedule_begins(plan.joined)
        assert self.open_model is not None
        assert self.open_model.origin is not None
        ends_run = await follow_arrivals(
            self.open_model.timetable,
            self.arrivals,
            self.stopping,
            self.open_model.origin,
            (plan.arrival_first, plan.arrival_stride),
            plan.joined,
        )
        self.stop(ends_run)

    async def _iterations_done(self) -> None:
        """--iterations: when every user has run its passes the run is over (unless the run
        time or a signal came first)."""
        iterations = self.plan.config.iterations
        if self.pool.tasks:  # asyncio.wait, not gather: giving up on it cancels no user
            stopped = asyncio.ensure_future(self.stopping.wait())
            users_done = asyncio.ensure_future(asyncio.wait(self.pool.tasks))
            await asyncio.wait([stopped, users_done], return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            users_done.cancel()
        self.stop(iterations_over(iterations))  # unless stopped already

    async def _hatch(self) -> bool:
        """-u users at -r, paced as a plan's (a worker's from its share's first slot); False
        when the run stopped before all had started."""
        config = self.plan.config
        hatch = Hatch(self.pool)
        started = asyncio.get_running_loop().time()
        await pace(hatch, config.users, started, 1 / config.hatch_rate, self.ctx.stop)
        log.info("launched %d users...", hatch.target)
        return hatch.target == config.users

    def _open_logs(self) -> None:
        config, ctx = self.plan.config, self.ctx
        if config.requests_file:
            requests_log = open_requests_log(config.requests_file, config.requests_format)
            ctx.requests_log = requests_log
            self.logs.append(requests_log)
        if config.debug_file:
            debug_log = open_debug_log(config.debug_file, config.debug_format)
            ctx.debug_log = debug_log
            self.logs.append(debug_log)
        for writer in self.logs:
            writer.start()

    async def _close_logs(self) -> None:
        for writer in self.logs:
            await writer.close()
