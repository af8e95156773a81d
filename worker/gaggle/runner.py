"""Users on this event loop: the role of a standalone run and of each Gaggle-mode worker.

The flow is the seed's: users start at the hatch rate; once all are running the session prints
the tables so far and resets the metrics (unless --no-reset-metrics), which is also when the run
time starts counting; at the end — run time over, Ctrl-C or SIGTERM — users finish the request in
flight, run their on_stop tasks, and the summary is printed. A second Ctrl-C ends at once. All of
that but the users is ``session.Session``'s, shared with the manager.
"""

from __future__ import annotations

import asyncio
import logging
import random

from gaggle.context import RunContext
from gaggle.http import CLIENTS
from gaggle.metrics.aggregate import Aggregator, Metrics, NullAggregator
from gaggle.metrics.ledger import Ledger
from gaggle.report.logs import BufferedLog, open_debug_log, open_requests_log
from gaggle.scheduler import allocate, hatch
from gaggle.session import RunPlan, Session
from gaggle.throttle import Throttle
from gaggle.user import TaskPlan, User, run_user

log = logging.getLogger("gaggle")


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
        super().__init__(plan, self.ledger)
        self.ctx = RunContext(
            config=config,
            aggregator=aggregator,
            stop=self.stopping,
            throttle=Throttle(config.throttle_requests) if config.throttle_requests else None,
        )
        self.metrics_started = self.ctx.started
        self.users: list[asyncio.Task[None]] = []
        self.logs: list[BufferedLog] = []

    def users_running(self) -> int:
        return sum(1 for task in self.users if not task.done())

    def users_in_result(self) -> int:
        return len(self.users)

    def take_delta(self) -> Metrics:
        """A worker's next delta for its manager: what its users did since the last one."""
        return self.ledger.take_delta()

    async def _drive(self) -> bool:
        self._open_logs()
        try:
            self._clock_starts(self.ctx.started)
            if await self._hatch():
                self.hatched()
            await self.stopping.wait()
            log.info("stopping (%s); waiting for users to exit", self.stop_reason)
            if self.users:
                await asyncio.gather(*self.users, return_exceptions=True)
        finally:
            await self._close_logs()
        return True

    async def _hatch(self) -> bool:
        plan, ctx = self.plan, self.ctx
        config = plan.config
        rng = random.Random(plan.seed)
        weights = [ts.weight for ts in plan.tasksets]
        # Allocation order is global: a worker's users continue the gaggle's sequence.
        allocation = allocate(plan.first_user + config.users, weights, config.scheduler, rng)
        allocation = allocation[plan.first_user :]
        task_plans = [TaskPlan(ts) for ts in plan.tasksets]
        clients = [CLIENTS[ts.client or config.http_client] for ts in plan.tasksets]
        loop = asyncio.get_running_loop()

        def launch(index: int) -> None:
            ts_index = allocation[index]
            taskset = plan.tasksets[ts_index]
            user_index = plan.first_user + index
            log.info("launching user %d from %s...", user_index + 1, taskset.__name__)
            user = User(ctx, user_index, ts_index, plan.hosts[ts_index], clients[ts_index]())
            self.users.append(loop.create_task(run_user(ctx, taskset, task_plans[ts_index], user)))

        launched = await hatch(config.users, config.hatch_rate, ctx.stop, launch)
        log.info("launched %d users...", launched)
        return launched == config.users

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
