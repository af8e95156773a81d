"""The run lifecycle that a standalone run, the manager and the operator's manager pod share.

Locust's Runner is one base that LocalRunner and MasterRunner specialise; this is ours. A role
(``runner.Runner``: users on this loop; ``distributed.manager.Manager``: workers over gRPC) only
says how the load is driven (``_drive``), how many users run, and how to give up at once. The rest
is written here, once: the -R report and /metrics opened before any load, running tables, the
live view (a panel on a terminal, status lines elsewhere: ``report.live``), the reset when every
user has hatched (which is also when the run time starts counting, unless --no-reset-metrics;
under a test plan or load shape, when a stage's users first all run), the stage marks of the
report's timeline, the control API's steering (``gaggle.run.steering``), the final tables, the
threshold verdicts (a --baseline is read here, by the process that judges), and signals
(``stop.SignalHandlers``: the second Ctrl-C exits 130, even while user code holds the loop).

The numbers have one owner, a ``Tally``: the session reads it (tables, Prometheus, the report's
timeline, status) and resets it at the hatch, and nothing else takes from it. What is read every
second — the whole run's totals for a scrape, /summary and -R, the live view's aggregate and
counters — the tally keeps up to date as deltas arrive (``RunTotals``): a read costs what
changed, not a merge of every name's histogram.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from gaggle.kits import SignalHandlers, StopSignal, every_interval
from gaggle.load import Crowd, Segment
from gaggle.metrics import Metrics, Source, Stats, TaskNames, Threshold, Verdict, evaluate
from gaggle.report import (
    FigureSampler,
    LiveInputs,
    NoReport,
    NoView,
    Progress,
    Report,
    SoFar,
    TableOptions,
    View,
    keep_showing,
    load_baseline,
    open_report,
    open_view,
    print_tables,
    print_verdicts,
    test_file_of,
)
from gaggle.run.loop_watch import LoopWatch
from gaggle.run.open_model import OpenModel
from gaggle.run.process import EXIT_ABORTED, settle_heap
from gaggle.run.steering import Steering
from gaggle.run.types import Aborted, LoadKind, RunPlan, RunResult, Tally
from gaggle.run.warnings import latency_note, summary_warnings

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger(__name__)


class Session:
    def __init__(self, plan: RunPlan, tally: Tally) -> None:
        settle_heap()  # before any clock starts: no full collection walks the startup heap
        self.plan, self.tally = plan, tally
        self.run_totals = tally.run_totals()  # hatching phase included; kept by the tally
        self.stopping = StopSignal()
        self.loop_watch = LoopWatch()  # this process's loop: its lag, a task that blocks it
        self.hatch_metrics: Metrics | None = None
        self.metrics_started = time.perf_counter()  # what the tables' and rules' seconds count
        self.load_started: float | None = None  # the first user's start (a manager's: set ahead)
        self.hatched_all = False
        self.task_names: TaskNames = [
            (ts.__name__, [t.name for t in ts.tasks]) for ts in plan.tasksets
        ]
        self._aborted = False
        self._driving: asyncio.Future[bool] | None = None
        self._ended_at: float | None = None
        self._timers: list[asyncio.TimerHandle | asyncio.Task[None]] = []
        self.stage_marks: list[tuple[float, str]] = []  # (epoch seconds, label) of each stage
        self.signals = SignalHandlers(self.stop, self.abort, EXIT_ABORTED)
        # a plan of users or a shape moves the users (then the control API, once it took them
        # over); else -u says how many run
        self.driven = plan.moves_users
        self.steering = Steering(self, plan.config, plan.shape)  # the control API's
        self.open_model = (  # an open model's timetable (None: a closed model); its stages
            OpenModel(plan.config, self.stopping, self.steering, plan.timetable)  # as a plan's
            if plan.config.open_model
            else None
        )
        # --baseline: read (ConfigError on a bad file) by whoever judges the run, never a worker
        baseline = plan.config.baseline if plan.owns_output else None
        self.baseline = load_baseline(baseline) if baseline else None
        self.baseline_values = self.baseline.values if self.baseline else None
        self.test = test_file_of(plan.tasksets) if plan.owns_output else None

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
        return self.user_crowd().target if self.driven else self.plan.config.users

    def worker_counts(self) -> tuple[int, int]:
        """(connected, lost) workers; none outside Gaggle mode."""
        return (0, 0)

    def loop_lags(self) -> dict[int, float]:
        return {}

    def loop_lag(self) -> float:
        """The run's worst event loop lag so far, in seconds (a manager's: its workers' too)."""
        return self.loop_watch.worst

    def has_workers(self) -> bool:
        """A manager: the live view shows its workers."""
        return False

    def waiting_for(self) -> str:
        """What the run waits for before its first user starts (the live view's label)."""
        return "starting"

    def _stopping(self, reason: str) -> None:
        """Called once, when the run starts stopping (a manager tells its workers)."""

    def user_crowd(self) -> Crowd:  # the users a plan, a shape or the control API moves
        raise NotImplementedError

    def take_over(self) -> None:
        """The control API moves the users from now on (a role that hatched them adopts them)."""
        self.driven = True

    def _follow(self, delay: float = 0.0) -> None:
        """Start the run's first driver, as its load says — the open model's arrivals, the
        plan, the shape, or the role's steady load; the control API may replace it later
        (``run.steering``). ``delay``: a manager's plan starts at the gaggle's common instant."""
        plan = self.plan
        if plan.config.open_model:
            self.steering.begin(self._follow_arrivals())
        elif plan.load is LoadKind.PLAN:
            self.steering.begin_plan(delay)
        elif plan.load is LoadKind.SHAPE and plan.shape is not None:
            self.steering.begin_shape(plan.shape, delay)
        elif (steady := self._steady()) is not None:
            self.steering.begin(steady)

    def _steady(self) -> Coroutine[Any, Any, None] | None:
        """-u at -r: the role's own driver, or None (a manager's workers hatch their shares)."""
        return None

    async def _follow_arrivals(self) -> None:
        """The open model: this role's arrivals on the timetable, then the run's end."""
        raise NotImplementedError

    def steering_refused(self) -> str:
        """Why the control API cannot move the users now; "" when it can."""
        if self.load_started is None or time.perf_counter() < self.load_started:
            return f"the run has not started yet ({self.waiting_for()})"
        return ""

    reschedule_lead = 0.0  # a manager's: its workers hear of a change before it is due

    def rescheduled(self, segment: Segment) -> None:
        """The steering changed an open model's timetable (a manager tells its workers)."""

    def worker_users(self) -> dict[int, int]:  # worker number → users asked; none standalone
        return {}

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
            metrics=self._run_metrics,
            users=self.users_running,
            workers=self.worker_counts,
            task_names=lambda: self.task_names,
            loop_lags=self.loop_lags,
            loop_lag=self.loop_watch.recent,
            loop_lag_max=self.loop_lag,
            users_target=self.users_target,
            stages=lambda: self.stage_marks,
            changes=lambda: [(c.at, c.what, c.text) for c in self.steering.changes],
            arrival_rate=lambda: self.open_model.rate_now() if self.open_model else 0.0,
            follow=self.run_totals.follow,
            names_limit=self.plan.config.request_names_limit,
            requests=self.run_totals.requests,
            counts=self.run_totals.counts,
        )

    def progress(self) -> Progress:
        """How far the run is, for the live view. The run time counts from the hatch (or the
        first user with --no-reset-metrics); a plan says its stage."""
        config, now = self.plan.config, time.perf_counter()
        if self.load_started is None or now < self.load_started:
            return Progress(0.0, config.run_time, self.waiting_for())
        # the control API may have moved the end; else it is the plan's or -t, exactly
        remaining = self.steering.remaining() if self.steering.end_changed else None
        if self.plan.load.staged:  # the plan's time, its stage's name
            elapsed = now - self.load_started
            planned = sum(stage.seconds for stage in config.plan_stages)  # a shape's: unknown, 0
            total = planned if remaining is None else elapsed + remaining
            label = (
                "stopping"
                if self.stopping.is_set()
                else (self.stage_marks[-1][1] if self.stage_marks else "starting")
            )
            return Progress(elapsed, total, label)
        counting = self.hatched_all or config.no_reset_metrics
        elapsed = now - self.metrics_started if counting else 0.0
        total = config.run_time if remaining is None or not counting else elapsed + remaining
        if self.stopping.is_set():
            label = "stopping"
        else:
            label = "running" if self.hatched_all else "hatching"
        return Progress(elapsed, total, label)

    def _load_seconds(self) -> float:
        if self.load_started is None:
            return 0.0
        return max(0.0, time.perf_counter() - self.load_started)

    def live_inputs(self) -> LiveInputs:
        return LiveInputs(
            progress=self.progress,
            users_running=self.users_running,
            users_target=self.users_target,
            run_so_far=self._run_so_far,
            load_seconds=self._load_seconds,
            workers=self.worker_counts if self.has_workers() else None,
            dropped=self._dropped if self.plan.config.open_model else None,
        )

    def _run_metrics(self) -> Metrics:
        """Everything so far, hatching phase included: the tally's live totals, not a copy
        (read them, don't change them)."""
        self.tally.metrics()  # a read of the tally still: what watches its reads sees this one
        return self.run_totals.metrics()

    def _run_so_far(self) -> tuple[Stats, dict[str, int]]:
        """The live view's: every request row merged and the errors, since the first user."""
        return self.run_totals.requests(), self.run_totals.counts().errors

    def _dropped(self) -> int:
        return self.run_totals.counts().dropped

    def abandoned(self) -> dict[str, int]:
        """What the stop timeout cancelled so far: requests in flight, and tasks (status)."""
        metrics = self.run_totals.counts()
        return {"requests": metrics.abandoned_requests, "tasks": metrics.abandoned_tasks}

    def measured(self) -> tuple[Metrics, float]:
        """The metrics the verdict will judge so far, and the seconds they cover."""
        return self.tally.metrics(), max(1e-9, time.perf_counter() - self.metrics_started)

    def failed_rules(self, rules: list[Threshold]) -> list[Verdict]:
        """``rules`` that fail on the measured metrics now; none before every user hatched."""
        if not self.hatched_all:
            return []
        metrics, duration = self.measured()
        verdicts = evaluate(rules, metrics, duration, self.loop_lag(), self.baseline_values)
        return [verdict for verdict in verdicts if not verdict.passed]

    # --- the run ----------------------------------------------------------------------------
    def so_far(self) -> SoFar:
        """The run as the final report would tell it if it ended now (the live page's)."""
        metrics, duration = self.measured()
        rules = self.plan.config.threshold_rules
        verdicts = (
            evaluate(rules, metrics, duration, self.loop_lag(), self.baseline_values)
            if self.hatched_all
            else []
        )
        latency = latency_note(self.plan.config, self.plan.tasksets)
        warnings = list(self._warnings(metrics, duration)) if self.hatched_all else []
        return SoFar(
            metrics, duration, self.stop_reason, self.task_names, verdicts, latency, warnings
        )

    async def run(self) -> RunResult:
        config, plan = self.plan.config, self.plan
        serves = bool(config.metrics_bind or config.web)  # the run's HTTP app listens somewhere
        live = plan.owns_output and serves  # a worker's port: its metrics only
        # A bad -R path refuses here, before any load; a worker's manager reports.
        report = (
            open_report(config, plan.hosts, self.source(), live=live)
            if plan.owns_output
            else NoReport()
        )
        if isinstance(report, Report):
            report.compare_with(self.test, self.baseline)
        endpoint: web.AppRunner | None = None
        view = open_view(config, plan.console, owns_output=plan.owns_output)
        self.signals.install()
        self.loop_watch.start()
        try:
            if serves:  # may refuse (a port in use): before any load too
                # imported here: aiohttp's server and prometheus_client (~20 MiB) are only for this
                from gaggle.web import listens_of, serve

                listens = listens_of(config.metrics_bind or "", config.web or "")
                controls = self.steering if plan.owns_output else None  # a worker obeys its manager
                snapshot = (
                    (lambda: report.snapshot(self.so_far())) if isinstance(report, Report) else None
                )
                endpoint, _ = await serve(
                    listens, self.source(), controls, config.control_token, snapshot
                )
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
            self.steering.close()
            if self.open_model is not None:
                self.open_model.close()
            view.close()  # erased before the final tables print
            report.close()
            self.signals.remove()
            self.loop_watch.stop()
            if endpoint is not None:
                await endpoint.cleanup()
        return self._finish(report, ran)

    def _finish(self, report: Report | NoReport, ran: bool) -> RunResult:
        duration = self.ended() - self.metrics_started if ran else 0.0
        owns, config = self.plan.owns_output, self.plan.config
        metrics = self.tally.metrics() if owns else Metrics()
        verdicts: list[Verdict] = []
        warnings: list[str] = []
        if owns and ran:  # the tables, then the --threshold rules on the measured metrics
            warnings = list(self._warnings(metrics, duration))
            if not config.no_metrics:
                log.info("printing metrics after %.0f seconds...", duration)
                self.print_tables(metrics, duration)
            verdicts = evaluate(
                config.threshold_rules, metrics, duration, self.loop_lag(), self.baseline_values
            )
            print_verdicts(self.plan.console, verdicts, shown=not config.no_metrics)
        result = RunResult(
            metrics=metrics,
            duration=duration,
            users=self.users_in_result(),
            stopped_by=self.stop_reason,
            hatch_metrics=self.hatch_metrics,
            task_names=self.task_names,
            verdicts=verdicts,
            latency=latency_note(config, self.plan.tasksets),
            warnings=warnings,
            whole=self.run_totals.metrics() if owns else None,
        )
        return report.finish(result) if ran else result  # nothing ran: nothing to report

    def _clock_starts(self, at: float) -> None:
        """The load starts at ``at``: with --no-reset-metrics, so do the tables and run time."""
        self.metrics_started = self.load_started = at
        if self.plan.config.no_reset_metrics and not self.plan.config.open_model:
            self._start_run_timer()  # an open model's schedule holds its -t

    def schedule_begins(self, joined: float = 0.0) -> None:
        """An open model has no hatch: the tables count from the first arrival, no reset."""
        self.hatched_all = True
        assert self.open_model is not None
        self.open_model.begins(joined)

    # --- what a driver tells the run (load.drive_users.Driven) ---------------------------------
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
            loop_lag=self.loop_lag(),
            names_limit=config.request_names_limit,
            baseline=self.baseline,
            test=self.test,
        )
        with self.plan.console:  # one write: the panel moves below the tables at once, no flicker
            print_tables(self.plan.console, metrics, options)

    def _warnings(self, metrics: Metrics, duration: float) -> tuple[str, ...]:
        plan, hatched = self.plan, self.hatched_all
        return summary_warnings(plan.config, plan.tasksets, plan.load, hatched, metrics, duration)

    def _start_run_timer(self) -> None:
        run_time = self.plan.config.run_time
        if run_time <= 0:
            return
        self.steering.run_time_starts(
            max(0.0, self.metrics_started + run_time - time.perf_counter())
        )

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

            def print_now() -> None:
                self.print_tables(self.tally.metrics(), time.perf_counter() - self.metrics_started)

            tables = every_interval(config.running_metrics, self.stopping, print_now)
            self._timers.append(asyncio.get_running_loop().create_task(tables))
