"""One run on this machine: hatch users, keep time, reset and print metrics, stop everyone.

The flow is the seed's: users start at the hatch rate; once all are running the tables so far
are printed and the metrics reset (unless --no-reset-metrics), which is also when the run time
starts counting; at the end — run time over, Ctrl-C or SIGTERM — users finish the request in
flight, run their on_stop tasks, and the summary is printed. A second Ctrl-C ends at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from rich.console import Console

from gaggle.config import RunConfig
from gaggle.context import RunContext
from gaggle.http import CLIENTS
from gaggle.metrics.aggregate import Aggregator, Metrics, NullAggregator
from gaggle.report.logs import BufferedLog, open_debug_log, open_requests_log
from gaggle.report.prometheus import Source, serve
from gaggle.report.recorder import NoReport, open_report
from gaggle.report.tables import TableOptions, print_tables, print_verdicts
from gaggle.scheduler import allocate, hatch
from gaggle.taskset import TaskSet
from gaggle.thresholds import Verdict, evaluate
from gaggle.throttle import Throttle
from gaggle.user import TaskPlan, User, run_user

log = logging.getLogger("gaggle")


def judge(plan: RunPlan, metrics: Metrics, duration: float) -> list[Verdict]:
    """Evaluate the --threshold rules on the measured metrics and print the verdicts."""
    verdicts = evaluate(plan.config.threshold_rules, metrics, duration)
    if not plan.config.no_metrics:
        print_verdicts(plan.console, verdicts)
    for verdict in verdicts:
        if not verdict.passed:
            log.warning("threshold failed: %s (observed %s)", verdict.expression, verdict.observed)
    return verdicts


class Aborted(Exception):
    """A second Ctrl-C: users were cancelled, nothing more is printed."""


@dataclass(slots=True)
class RunResult:
    """What a run measured. ``metrics`` covers ``duration`` seconds after the reset (or the
    whole run with --no-reset-metrics); ``hatch_metrics`` is what the reset set aside."""

    metrics: Metrics
    duration: float
    users: int
    stopped_by: str
    hatch_metrics: Metrics | None = None
    task_names: list[tuple[str, list[str]]] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)  # one per --threshold rule

    @property
    def passed(self) -> bool:
        """Every threshold held (True when there are none)."""
        return all(verdict.passed for verdict in self.verdicts)

    def all_metrics(self) -> Metrics:
        """Everything the run did: the hatching phase and the measured phase merged."""
        return Metrics.combined(self.hatch_metrics, self.metrics)


@dataclass(slots=True)
class RunPlan:
    """A validated run: the config and, per task set, the host its users send to."""

    config: RunConfig
    tasksets: list[type[TaskSet]]
    hosts: list[str]
    console: Console = field(default_factory=Console)
    seed: int | None = None
    # Gaggle mode: a worker runs users first_user.. of the whole gaggle, and neither prints nor
    # resets metrics (the manager does, from the deltas the worker drains itself).
    first_user: int = 0
    report: bool = True
    on_hatched: Callable[[], None] | None = None


class Runner:
    def __init__(self, plan: RunPlan) -> None:
        self.plan = plan
        config = plan.config
        aggregator = (
            NullAggregator()
            if config.no_metrics
            else Aggregator(track_tasks=not config.no_task_metrics)
        )
        self.ctx = RunContext(
            config=config,
            aggregator=aggregator,
            throttle=Throttle(config.throttle_requests) if config.throttle_requests else None,
        )
        self.totals = Metrics()
        self.hatch_metrics: Metrics | None = None
        self.metrics_started = self.ctx.started
        self.users: list[asyncio.Task[None]] = []
        self.logs: list[BufferedLog] = []
        self.task_names = [(ts.__name__, [t.name for t in ts.tasks]) for ts in plan.tasksets]
        self._interrupts = 0

    # --- printing ---------------------------------------------------------------------------
    def snapshot(self) -> Metrics:
        self.totals.merge(self.ctx.aggregator.drain())
        return self.totals

    def print_metrics(self, metrics: Metrics, duration: float) -> None:
        config = self.plan.config
        options = TableOptions(
            task_names=self.task_names,
            duration=duration,
            status_codes=config.status_codes,
            task_metrics=not config.no_task_metrics,
        )
        print_tables(self.plan.console, metrics, options)

    # --- the run ----------------------------------------------------------------------------
    async def run(self) -> RunResult:
        config = self.plan.config
        plan = self.plan
        # A bad -R path refuses here, before any load; in Gaggle mode the manager reports.
        report = open_report(config, plan.hosts, self.source()) if plan.report else NoReport()
        endpoint = await self._serve_metrics() if config.metrics_bind else None  # may refuse
        self._open_logs()
        self._install_signals()
        timers = self._start_timers()
        try:
            hatched = await self._hatch()
            if hatched and self.plan.on_hatched is not None:
                self.plan.on_hatched()
            if hatched and self.plan.report and not self.ctx.stop.is_set():
                self._after_hatch()
            if not config.no_reset_metrics:
                timers.extend(self._start_run_timer())
            await self.ctx.stop.wait()
            log.info("stopping (%s); waiting for users to exit", self.ctx.stop.reason)
            await self._wait_for_users()
            for timer in timers:
                timer.cancel()
        finally:
            report.close()
            self._remove_signals()
            await self._close_logs()
            if endpoint is not None:
                await endpoint.cleanup()
        duration = time.perf_counter() - self.metrics_started
        metrics = self.snapshot() if self.plan.report else Metrics()
        if self.plan.report and not config.no_metrics:
            log.info("printing metrics after %.0f seconds...", duration)
            self.print_metrics(metrics, duration)
        result = RunResult(
            metrics=metrics,
            duration=duration,
            users=len(self.users),
            stopped_by=self.ctx.stop.reason,
            hatch_metrics=self.hatch_metrics,
            task_names=self.task_names,
            verdicts=judge(self.plan, metrics, duration) if self.plan.report else [],
        )
        return report.finish(result)

    def source(self) -> Source:
        """Everything so far, for /metrics and the report's per-second samples."""
        return Source(
            metrics=lambda: Metrics.combined(self.hatch_metrics, self.snapshot()),
            users=lambda: sum(1 for task in self.users if not task.done()),
            task_names=lambda: self.task_names,
        )

    async def _serve_metrics(self) -> web.AppRunner:
        endpoint, _ = await serve(str(self.plan.config.metrics_bind), self.source())
        return endpoint

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

    def _after_hatch(self) -> None:
        config, console = self.plan.config, self.plan.console
        users = config.users
        if config.no_reset_metrics:
            console.print(f"All {users} users hatched.")
            return
        now = time.perf_counter()
        snapshot = self.snapshot()
        if not (config.no_metrics or config.only_summary):
            self.print_metrics(snapshot, now - self.metrics_started)
        console.print(
            f"\nAll {users} users hatched, resetting metrics (disable with --no-reset-metrics).\n"
        )
        self.hatch_metrics, self.totals = self.totals, Metrics()
        self.metrics_started = now

    def _start_timers(self) -> list[asyncio.TimerHandle | asyncio.Task[Any]]:
        """Timers that start with the run: running metrics, and the run time when it counts
        from the first user (--no-reset-metrics)."""
        config = self.plan.config
        timers: list[asyncio.TimerHandle | asyncio.Task[Any]] = []
        if config.running_metrics > 0 and not config.only_summary and not config.no_metrics:
            loop = asyncio.get_running_loop()
            timers.append(loop.create_task(self._running_metrics(config.running_metrics)))
        if config.no_reset_metrics:
            timers.extend(self._start_run_timer())
        return timers

    def _start_run_timer(self) -> list[asyncio.TimerHandle]:
        """The run time counts from the reset, or from the start with --no-reset-metrics."""
        run_time = self.plan.config.run_time
        if run_time <= 0:
            return []
        remaining = max(0.0, self.metrics_started + run_time - time.perf_counter())
        loop = asyncio.get_running_loop()
        return [loop.call_later(remaining, self.ctx.stop.set, "run time elapsed")]

    async def _running_metrics(self, every: float) -> None:
        while not self.ctx.stop.is_set():
            await self.ctx.stop.sleep(every)
            if not self.ctx.stop.is_set():
                self.print_metrics(self.snapshot(), time.perf_counter() - self.metrics_started)

    async def _wait_for_users(self) -> None:
        if self.users:
            await asyncio.gather(*self.users, return_exceptions=True)
        if self._interrupts > 1:
            raise Aborted

    # --- signals and logs -------------------------------------------------------------------
    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, self._on_signal, signum)

    def _remove_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signum)

    def _on_signal(self, signum: int) -> None:
        self._interrupts += 1
        name = signal.Signals(signum).name
        if self._interrupts == 1:
            log.warning("caught %s, stopping... (again to exit at once)", name)
            self.ctx.stop.set(f"caught {name}")
            return
        log.warning("caught %s again, exiting now", name)
        for task in self.users:
            task.cancel()

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
