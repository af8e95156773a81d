"""The run lifecycle that a standalone run, the manager and the operator's manager pod share.

Locust's Runner is one base that LocalRunner and MasterRunner specialise; this is ours. A role
(``runner.Runner``: users on this loop; ``distributed.manager.Manager``: workers over gRPC) only
says how the load is driven (``_drive``), how many users run, and how to give up at once. The rest
is written here, once: the -R report and /metrics opened before any load, running tables, the
live view (a panel on a terminal, status lines elsewhere: ``report.live``), the reset when every
user has hatched (which is also when the run time starts counting, unless --no-reset-metrics;
under a test plan or load shape, when a stage's users first all run), the stage marks of the
report's timeline, the final tables, the threshold verdicts, and signals — the first Ctrl-C or
SIGTERM stops gracefully, the second ends the run at once (exit 130), on a manager too.

The numbers have one owner, a ``Tally``: the session reads it (tables, Prometheus, the report's
timeline, status) and resets it at the hatch, and nothing else takes from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web
from rich.console import Console

from gaggle.arrivals import rate_asked
from gaggle.config import RunConfig
from gaggle.metrics.aggregate import Metrics, TaskNames
from gaggle.metrics.source import Source
from gaggle.omission import latency_note, summary_warnings
from gaggle.report.live import NoView, View, keep_showing, open_view
from gaggle.report.prometheus import serve
from gaggle.report.recorder import NoReport, Report, open_report
from gaggle.report.status import FigureSampler, LiveInputs, Progress, RunSoFar
from gaggle.report.tables import TableOptions, print_tables
from gaggle.result import RunResult as RunResult  # re-exported: its home was here
from gaggle.result import judge
from gaggle.shape import LoadShape
from gaggle.stop import StopSignal
from gaggle.taskset import TaskSet
from gaggle.thresholds import Threshold, Verdict, evaluate

log = logging.getLogger("gaggle")


class Aborted(Exception):
    """A second Ctrl-C: the run ended at once, nothing more is printed (exit 130)."""


@dataclass(slots=True)
class RunPlan:
    """A validated run: the config and, per task set, the host its users send to."""

    config: RunConfig
    tasksets: list[type[TaskSet]]
    hosts: list[str]
    console: Console = field(default_factory=Console)
    seed: int | None = None
    # Gaggle mode: a worker runs users first_user.. of the whole gaggle, and its manager owns the
    # output (prints, resets at the hatch, judges, writes -R) from the deltas the worker ships.
    first_user: int = 0
    owns_output: bool = True
    on_hatched: Callable[[], None] | None = None
    shape: type[LoadShape] | None = None  # its ticks drive the users (gaggle.shape)
    arrival_first: int = 0  # an open model's worker starts arrivals first, first + stride, …
    arrival_stride: int = 1


class Tally(Protocol):
    """The run's numbers: a ``metrics.ledger.Ledger`` here, merged deltas on a manager."""

    def metrics(self) -> Metrics:
        """Counted since the last reset; reading takes nothing away."""
        ...

    def reset(self) -> Metrics:
        """Hand over what was counted and start again from zero."""
        ...


class Session:
    def __init__(self, plan: RunPlan, tally: Tally) -> None:
        self.plan, self.tally = plan, tally
        self.stopping = StopSignal()
        self.hatch_metrics: Metrics | None = None
        self.metrics_started = time.perf_counter()  # what the tables' and rules' seconds count
        self.load_started: float | None = None  # the first user's start (a manager: planned)
        self.hatched_all = False
        self.task_names: TaskNames = [
            (ts.__name__, [t.name for t in ts.tasks]) for ts in plan.tasksets
        ]
        self._interrupts = 0
        self._aborted = False
        self._driving: asyncio.Future[bool] | None = None
        self._ended_at: float | None = None
        self._timers: list[asyncio.TimerHandle | asyncio.Task[None]] = []
        self.stage_marks: list[tuple[float, str]] = []  # (epoch seconds, label) of each stage

    # --- what a role says -------------------------------------------------------------------
    async def _drive(self) -> bool:
        """Run the load until everyone has stopped; False when it never started."""
        raise NotImplementedError

    def users_running(self) -> int:
        raise NotImplementedError

    def users_in_result(self) -> int:
        return self.plan.config.users

    def users_target(self) -> int:
        """Users the load asks for now (a plan's or shape's, or -u)."""
        return self.plan.config.users

    def worker_counts(self) -> tuple[int, int]:
        """(connected, lost) workers; none outside Gaggle mode."""
        return (0, 0)

    def loop_lags(self) -> dict[int, float]:
        return {}

    def has_workers(self) -> bool:
        """A manager: the live view shows its workers."""
        return False

    def waiting_for(self) -> str:
        """What the run waits for before its first user starts (the live view's label)."""
        return "starting"

    def _stopping(self, reason: str) -> None:
        """Called once, when the run starts stopping (a manager tells its workers)."""

    # --- what anyone may ask ----------------------------------------------------------------
    def stop(self, reason: str) -> None:
        """Stop gracefully: users finish their request and run their on_stop tasks."""
        if self.stopping.is_set():
            return
        self.stopping.set(reason)
        self._stopping(reason)

    def abort(self, reason: str) -> None:
        """End at once: users are cancelled mid-request and ``run()`` raises ``Aborted``."""
        self.stop(reason)
        self._aborted = True
        if self._driving is not None:
            self._driving.cancel()

    @property
    def stop_reason(self) -> str:
        return self.stopping.reason

    @property
    def aborted(self) -> bool:
        """A second Ctrl-C came: a role tears down without waiting for anything."""
        return self._aborted

    def ended(self) -> float:
        """The load is over (a role may still be tidying up): what the duration counts to."""
        if self._ended_at is None:
            self._ended_at = time.perf_counter()
        return self._ended_at

    def source(self) -> Source:
        """Everything so far, for /metrics, /summary and the report's per-second samples."""
        return Source(
            metrics=lambda: Metrics.combined(self.hatch_metrics, self.tally.metrics()),
            users=self.users_running,
            workers=self.worker_counts,
            task_names=lambda: self.task_names,
            loop_lags=self.loop_lags,
            users_target=self.users_target,
            stages=lambda: self.stage_marks,
            arrival_rate=lambda: rate_asked(self.plan.config, self.load_started, self.stopping),
        )

    def progress(self) -> Progress:
        """How far the run is, for the live view. The run time counts from the hatch (or the
        first user with --no-reset-metrics); a staged test plan would say its stage here."""
        config, now = self.plan.config, time.perf_counter()
        if self.load_started is None or now < self.load_started:
            return Progress(0.0, config.run_time, self.waiting_for())
        if config.test_plan or self.plan.shape is not None:  # the plan's time, its stage's name
            total = sum(stage.seconds for stage in config.plan_stages)  # a shape's: unknown, 0
            label = (
                "stopping"
                if self.stopping.is_set()
                else (self.stage_marks[-1][1] if self.stage_marks else "starting")
            )
            return Progress(now - self.load_started, total, label)
        counting = self.hatched_all or config.no_reset_metrics
        elapsed = now - self.metrics_started if counting else 0.0
        if self.stopping.is_set():
            label = "stopping"
        else:
            label = "running" if self.hatched_all else "hatching"
        return Progress(elapsed, config.run_time, label)

    def _load_seconds(self) -> float:
        if self.load_started is None:
            return 0.0
        return max(0.0, time.perf_counter() - self.load_started)

    def live_inputs(self) -> LiveInputs:
        return LiveInputs(
            progress=self.progress,
            users_running=self.users_running,
            users_target=self.users_target,
            run_so_far=RunSoFar(self.tally.metrics, lambda: self.hatch_metrics),
            load_seconds=self._load_seconds,
            workers=self.worker_counts if self.has_workers() else None,
        )

    def measured(self) -> tuple[Metrics, float]:
        """The metrics the verdict will judge so far, and the seconds they cover."""
        return self.tally.metrics(), max(1e-9, time.perf_counter() - self.metrics_started)

    def failed_rules(self, rules: list[Threshold]) -> list[Verdict]:
        """``rules`` that fail on the measured metrics now; none before every user hatched."""
        if not self.hatched_all:
            return []
        metrics, duration = self.measured()
        return [verdict for verdict in evaluate(rules, metrics, duration) if not verdict.passed]

    # --- the run ----------------------------------------------------------------------------
    async def run(self) -> RunResult:
        config, plan = self.plan.config, self.plan
        # A bad -R path refuses here, before any load; a worker's manager reports.
        report = open_report(config, plan.hosts, self.source()) if plan.owns_output else NoReport()
        endpoint: web.AppRunner | None = None
        view = open_view(config, plan.console, owns_output=plan.owns_output)
        self._install_signals()
        try:
            if config.metrics_bind:  # may refuse (a port in use): before any load too
                endpoint, _ = await serve(config.metrics_bind, self.source())
            self._start_running_tables()
            self._start_view(view)
            self._driving = asyncio.ensure_future(self._drive())
            try:
                ran = await self._driving
            except asyncio.CancelledError:
                if self._aborted:
                    raise Aborted from None
                raise
            if self._aborted:  # a role that ended by itself after a second Ctrl-C
                raise Aborted
        finally:
            for timer in self._timers:
                timer.cancel()
            view.close()  # erased before the final tables print
            report.close()
            self._remove_signals()
            if endpoint is not None:
                await endpoint.cleanup()
        return self._finish(report, ran)

    def _finish(self, report: Report | NoReport, ran: bool) -> RunResult:
        duration = self.ended() - self.metrics_started if ran else 0.0
        plan, owns = self.plan, self.plan.owns_output
        judged = owns and ran  # the tables, verdicts and warnings are this process's to give
        metrics = self.tally.metrics() if owns else Metrics()
        if owns and ran and not self.plan.config.no_metrics:
            log.info("printing metrics after %.0f seconds...", duration)
            self.print_tables(metrics, duration)
        result = RunResult(
            metrics=metrics,
            duration=duration,
            users=self.users_in_result(),
            stopped_by=self.stop_reason,
            hatch_metrics=self.hatch_metrics,
            task_names=self.task_names,
            verdicts=judge(plan.config, plan.console, metrics, duration) if judged else [],
            latency=latency_note(plan.config, plan.tasksets),
            warnings=list(self._warnings(metrics, duration)) if judged else [],
        )
        return report.finish(result) if ran else result  # nothing ran: nothing to report

    def _clock_starts(self, at: float) -> None:
        """The load starts at ``at``: with --no-reset-metrics, so do the tables and run time."""
        self.metrics_started = self.load_started = at
        if self.plan.config.no_reset_metrics and not self.plan.config.open_model:
            self._start_run_timer()  # an open model's schedule holds its -t

    def schedule_begins(self) -> None:
        """An open model has no hatch: the tables count from the first arrival, no reset."""
        self.hatched_all = True

    # --- what a driver tells the run (gaggle.drive.Driven) -----------------------------------
    def stage_began(self, label: str, users: int) -> None:
        """A plan's or shape's stage starts: the report's timeline marks it."""
        log.info("%s", label)
        self.stage_marks.append((time.time(), label))

    def stage_reached(self, users: int) -> None:
        """A stage's users all run; the first time is the hatch (and the reset)."""
        self.hatched(users)

    def hatched(self, users: int | None = None) -> None:
        """Every user is running: print the tables so far and reset (unless
        --no-reset-metrics); the run time counts from here."""
        if self.hatched_all:
            return
        users = self.plan.config.users if users is None else users
        self.hatched_all = True
        if self.plan.on_hatched is not None:
            self.plan.on_hatched()
        if not self.plan.owns_output or self.stopping.is_set():
            return
        config, console = self.plan.config, self.plan.console
        if config.no_reset_metrics:
            console.print(f"All {users} users hatched.")
            return
        now = time.perf_counter()
        if not (config.no_metrics or config.only_summary):
            self.print_tables(self.tally.metrics(), now - self.metrics_started)
        console.print(
            f"\nAll {users} users hatched, resetting metrics (disable with --no-reset-metrics).\n"
        )
        self.hatch_metrics = self.tally.reset()
        self.metrics_started = now
        self._start_run_timer()

    def print_tables(self, metrics: Metrics, duration: float) -> None:
        config = self.plan.config
        options = TableOptions(
            task_names=self.task_names,
            duration=duration,
            status_codes=config.status_codes,
            task_metrics=not config.no_task_metrics,
            latency=latency_note(config, self.plan.tasksets),
            warnings=self._warnings(metrics, duration),
        )
        with self.plan.console:  # one write: the panel moves below the tables at once, no flicker
            print_tables(self.plan.console, metrics, options)

    def _warnings(self, metrics: Metrics, duration: float) -> tuple[str, ...]:
        plan, hatched = self.plan, self.hatched_all
        shaped = plan.shape is not None
        return summary_warnings(plan.config, plan.tasksets, shaped, hatched, metrics, duration)

    def _start_run_timer(self) -> None:
        run_time = self.plan.config.run_time
        if run_time <= 0:
            return
        remaining = max(0.0, self.metrics_started + run_time - time.perf_counter())
        loop = asyncio.get_running_loop()
        self._timers.append(loop.call_later(remaining, self.stop, "run time elapsed"))

    def _start_view(self, view: View) -> None:
        if isinstance(view, NoView):
            return  # nobody looks: no readings either
        sampler = FigureSampler(self.live_inputs())
        self._timers.append(asyncio.get_running_loop().create_task(keep_showing(view, sampler)))

    def _start_running_tables(self) -> None:
        config = self.plan.config
        if not self.plan.owns_output or config.only_summary or config.no_metrics:
            return
        if config.running_metrics > 0:
            task = asyncio.get_running_loop().create_task(self._running_tables())
            self._timers.append(task)

    async def _running_tables(self) -> None:
        """Every --running-metrics seconds on a fixed grid: printing takes time, and a loop
        that slept the interval after each print would drift later with every table."""
        every = self.plan.config.running_metrics
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += every
            await self.stopping.sleep(max(0.0, next_at - loop.time()))
            if self.stopping.is_set():
                return
            self.print_tables(self.tally.metrics(), time.perf_counter() - self.metrics_started)

    # --- signals ----------------------------------------------------------------------------
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
            self.stop(f"caught {name}")
            return
        log.warning("caught %s again, exiting now", name)
        self.abort(f"caught {name} again")
