"""Changing a running test: who drives the users now, and when the run ends.

A run has one *driver* at a time — the hatch of ``-u`` at ``-r``, a ``--test-plan``, a load shape
— moving a ``drive.Crowd`` (this loop's users, or on a manager the workers'). The control API
(``report.control_api``) replaces it: a new user count paced at a hatch rate, or a new plan
started from the users running now. The run's end is the last word on it: a plan ends the run
with its last stage; a run time set later ends it then instead (a plan over before that holds
its last users). A new user count keeps the end that was planned (a plan's end becomes the run's
deadline); a shape replaced has no end, so the run goes on until stopped or given a run time.

An open model (``--arrival-rate`` or a plan of rates) is steered by its timetable instead
(``gaggle.run.open_model``): a new arrival rate holds until the planned end, a plan of rates starts
from the rate asked now and ends the run with its end, a run time cuts what is left of the
schedule short or holds its last rate longer. Its users are the pool's, so a user count is
refused there, as an arrival rate is in a closed model.

Each change is logged, kept for the report's timeline and counted for Prometheus.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from gaggle.errors import TestDefinitionError
from gaggle.kits import StopSignal
from gaggle.load import (
    PLAN_OVER,
    RUN_TIME_OVER,
    ArrivalSchedule,
    Crowd,
    LoadShape,
    PlanStage,
    Ramp,
    Segment,
    canonical,
    follow_plan,
    follow_shape,
    is_rate_plan,
    pace,
)
from gaggle.options import RunConfig, parse_stages, share_refused
from gaggle.report import Progress
from gaggle.run.open_model import OpenModel
from gaggle.run.types import LoadKind
from gaggle.web import ControlError, ControlReply

log = logging.getLogger(__name__)


class SteeredRun(Protocol):
    """What the steering needs of the run (the session, specialised by its role)."""

    stopping: StopSignal
    open_model: OpenModel | None  # its timetable says the load instead of users
    reschedule_lead: float  # how far ahead an open model's change is due (a manager's)

    def stop(self, reason: str) -> None: ...

    def rescheduled(self, segment: Segment) -> None: ...

    def stage_began(self, label: str, users: int) -> None: ...

    def stage_reached(self, users: int) -> None: ...

    def user_crowd(self) -> Crowd:
        """The users a driver moves: this loop's, or the workers'."""
        ...

    def steering_refused(self) -> str:
        """Why the users cannot be moved now (not started, a manager's workers hatching);
        "" when they can."""
        ...

    def take_over(self) -> None:
        """From now on the steering's drivers say the users (a manager adopts the shares its
        workers hatched, so it can move them one by one)."""
        ...

    def users_running(self) -> int: ...

    def users_target(self) -> int: ...

    def worker_users(self) -> dict[int, int]: ...

    def progress(self) -> Progress: ...

    def abandoned(self) -> dict[str, int]: ...


@dataclass(frozen=True, slots=True)
class Change:
    at: float  # epoch seconds
    what: str  # one of report.control_api.CHANGES
    text: str  # "users 50 → 200 at 10/s": the log line, the timeline's label


class Steering:
    def __init__(self, run: SteeredRun, config: RunConfig, shape: type[LoadShape] | None) -> None:
        self.run = run
        self.hatch_rate = config.hatch_rate
        self.plan: tuple[PlanStage, ...] = config.plan_stages
        self.load = LoadKind.of(config, shape)  # a change may turn it into another
        self.shape = shape
        self.stage = ""  # the current stage's label (a plan's or shape's)
        self.changes: list[Change] = []
        self.failure: TestDefinitionError | None = None  # a load shape's bad tick
        self._run_time = config.run_time  # until the run time counts: what it will be
        self._driver: asyncio.Task[None] | None = None
        self._plan_started: float | None = None  # loop time
        self._deadline: float | None = None  # loop time the run stops at
        self._timer: asyncio.TimerHandle | None = None
        self.end_changed = False  # a change said when the run ends: the hatch's -t no longer does

    # --- the role's first driver ------------------------------------------------------------
    def begin(self, load: Coroutine[Any, Any, None]) -> None:
        """-u at -r (or a worker's share): the run time or a signal ends the run."""
        self._replace(load, ends_run="")

    def begin_plan(self, delay: float = 0.0) -> None:
        self._replace(self._follow_plan(self.plan, delay), ends_run=PLAN_OVER)

    def begin_shape(self, shape: type[LoadShape], delay: float = 0.0) -> None:
        ended = f"the load shape {shape.__name__} ended"
        self._replace(self._follow_shape(shape, delay), ends_run=ended)

    def run_time_starts(self, seconds: float) -> None:
        """The hatch: -t counts from here, unless a change already said when the run ends."""
        if not self.end_changed:
            self._set_deadline(seconds)

    def close(self) -> None:
        """The run is over: no driver moves users any more."""
        if self._driver is not None:
            self._driver.cancel()
        if self._timer is not None:
            self._timer.cancel()

    # --- drivers ----------------------------------------------------------------------------
    def _replace(self, load: Coroutine[Any, Any, None], ends_run: str) -> None:
        if self._driver is not None:
            self._driver.cancel()
        self._driver = asyncio.get_running_loop().create_task(self._drive(load, ends_run))

    async def _drive(self, load: Coroutine[Any, Any, None], ends_run: str) -> None:
        try:
            await load
        except TestDefinitionError as error:  # a shape's bad tick ends the run gracefully
            self.failure = error
            self.run.stop(str(error))
            return
        if ends_run and self._deadline is None:
            self.run.stop(ends_run)

    async def _follow_plan(self, plan: tuple[PlanStage, ...], delay: float) -> None:
        await self.run.stopping.sleep(delay)
        if self.run.stopping.is_set():
            return
        self._plan_started = asyncio.get_running_loop().time()
        await follow_plan(plan, self.run.user_crowd(), self.run.stopping, self)

    async def _follow_shape(self, shape: type[LoadShape], delay: float) -> None:
        await self.run.stopping.sleep(delay)
        if not self.run.stopping.is_set():
            await follow_shape(shape, self.run.user_crowd(), self.run.stopping, self)

    async def _move_users(self, users: int) -> None:
        started = asyncio.get_running_loop().time()
        crowd, stopping = self.run.user_crowd(), self.run.stopping
        if await pace(crowd, users, started, 1 / self.hatch_rate, stopping) and users:
            self.run.stage_reached(users)  # the first time: the hatch (and the reset)

    # --- what a driver tells the run (drive.Driven), seen on the way ---------------------------
    def stage_began(self, label: str, users: int) -> None:
        self.stage = label
        self.run.stage_began(label, users)

    def stage_reached(self, users: int) -> None:
        self.run.stage_reached(users)

    # --- the end ----------------------------------------------------------------------------
    def _set_deadline(self, seconds: float | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._deadline = None
        if seconds is None:
            return
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + seconds
        self._timer = loop.call_later(seconds, self.run.stop, RUN_TIME_OVER)

    def remaining(self) -> float | None:
        """Seconds until the run ends by itself; None when only a stop ends it (or, with
        --iterations, the users' last pass)."""
        try:
            now: float | None = asyncio.get_running_loop().time()
        except RuntimeError:  # no loop yet: nothing runs
            now = None
        if self.run.open_model is not None:  # its timetable's end is the run's
            return self.run.open_model.remaining()
        if self._deadline is not None and now is not None:
            return max(0.0, self._deadline - now)
        if self.load is LoadKind.PLAN:  # no deadline: the plan ends the run
            total = sum(stage.seconds for stage in self.plan)
            if self._plan_started is None or now is None:
                return total
            return max(0.0, self._plan_started + total - now)
        if not self.end_changed and self._run_time > 0:
            return self._run_time  # -t, which counts from the hatch
        return None

    # --- the control API (report.control_api.Controls) --------------------------------------
    def status(self) -> ControlReply:
        progress, remaining = self.run.progress(), self.remaining()
        stopping = self.run.stopping
        return {
            "state": "stopping" if stopping.is_set() else progress.label,
            "users": {"target": self.run.users_target(), "running": self.run.users_running()},
            "hatch_rate": self.hatch_rate,
            "load": self.load,  # what says the users: users, plan, shape or iterations
            "plan": canonical(self.plan) if self.load is LoadKind.PLAN else None,
            "stage": self.stage if self.load.staged and self.stage else None,
            "shape": self.shape.__name__ if self.load is LoadKind.SHAPE and self.shape else None,
            "run_time": {
                "elapsed": round(progress.elapsed, 3),
                "remaining": None if remaining is None else round(remaining, 3),
            },
            "arrival_rate": round(self.run.open_model.rate_now(), 3)
            if self.run.open_model is not None
            else None,  # a closed model has none
            "workers": {str(number): users for number, users in self.run.worker_users().items()},
            "stopping": stopping.reason or None,
            "abandoned": self.run.abandoned(),  # cancelled by the stop timeout: not failures
            "changes": [{"at": c.at, "what": c.what, "change": c.text} for c in self.changes],
        }

    def _may_change(self, field: str, value: object, moves_users: bool = True) -> None:
        stopping = self.run.stopping
        if stopping.is_set():
            raise ControlError(409, field, value, f"the run is stopping ({stopping.reason})")
        if not moves_users:
            return
        if self.load is LoadKind.ITERATIONS:
            why = "with --iterations each user runs its passes and the run ends when all have"
            raise ControlError(409, field, value, f"{why}; a run time or a stop can change")
        refused = self.run.steering_refused()
        if refused:
            raise ControlError(409, field, value, refused)

    def _fits(self, field: str, value: object, kind: str, amount: float) -> None:
        """A 400 when this run's processes cannot hold ``amount`` of ``kind`` ("users",
        "arrivals"): each process holds at most its bound (``options.conflicts.check_shares``),
        so a manager holds that for each worker it runs; a run cannot add processes."""
        processes = max(1, len(self.run.worker_users()))
        more = "a run keeps the processes it started with"
        refused = share_refused(kind, amount, processes, more)
        if refused:
            raise ControlError(400, field, value, refused)

    def _record(self, what: str, text: str) -> ControlReply:
        log.warning("control: %s", text)
        self.changes.append(Change(time.time(), what, text))
        return self.status()

    def _closed_only(self, field: str, value: object) -> None:
        if self.run.open_model is not None:
            why = "an open model's users are its pool: set arrival_rate, a plan of rates"
            raise ControlError(409, field, value, f"{why} (R/s,DURATION;…) or the run time")

    def set_users(self, users: int, hatch_rate: float | None) -> ControlReply:
        self._closed_only("users", users)
        self._may_change("users", users)
        self._fits("users", users, "users", users)
        before = self.run.users_target()
        self.run.take_over()
        self.hatch_rate = hatch_rate or self.hatch_rate
        if self.load is LoadKind.PLAN and self._deadline is None:  # the plan's end stays the run's
            self.end_changed = True
            self._set_deadline(self.remaining())
        self.load, self.plan, self.stage = LoadKind.USERS, (), ""
        self._replace(self._move_users(users), ends_run="")
        return self._record("users", f"users {before} → {users} at {self.hatch_rate:g}/s")

    def set_plan(self, plan: str) -> ControlReply:
        new = parse_stages("plan", plan)  # the API sends it checked; code may not
        if is_rate_plan(new) != (self.run.open_model is not None):
            model = "an open model" if self.run.open_model else "a closed model"
            kind = "rates (R/s,DURATION;…)" if self.run.open_model else "users (USERS,DURATION;…)"
            raise ControlError(409, "plan", plan, f"the run is {model}: give a plan of {kind}")
        self._may_change("plan", plan)
        if is_rate_plan(new):
            self._fits("plan", plan, "arrivals", max(stage.rate or 0.0 for stage in new))
        else:
            self._fits("plan", plan, "users", max(stage.users for stage in new))
        if self.run.open_model is not None:
            return self._set_rate_plan(plan, new, self.run.open_model)
        self.run.take_over()
        self.load, self.plan, self.stage = LoadKind.PLAN, new, ""
        self.end_changed = True  # the plan ends the run
        self._set_deadline(None)
        self._replace(self._follow_plan(self.plan, 0.0), ends_run=PLAN_OVER)
        return self._record("plan", f"plan → {plan} (from {self.run.users_target()} users)")

    def set_run_time(self, remaining: float) -> ControlReply:
        self._may_change("remaining", remaining, moves_users=self.run.open_model is not None)
        before = self.remaining()
        self.end_changed = True
        if self.run.open_model is not None:  # the timetable's end is the run's
            rest = self.run.open_model.rest(remaining)  # the stages before the end go on
            self._reschedule(rest, RUN_TIME_OVER, stages=None)
        else:
            self._set_deadline(remaining)
        was = "until stopped" if before is None else f"{before:.0f} s"
        return self._record("run_time", f"run time: {remaining:g} s remaining (was {was})")

    def set_arrival_rate(self, per_second: float) -> ControlReply:
        open_model = self.run.open_model
        if open_model is None:
            why = "no open model in this run (its users are a closed model: set users or a plan)"
            raise ControlError(409, "arrival_rate", per_second, why)
        self._may_change("arrival_rate", per_second)
        self._fits("arrival_rate", per_second, "arrivals", per_second)
        before, ends = open_model.rate_now(), open_model.timetable.ends

        def constant(at: float) -> ArrivalSchedule:  # until the end planned (or a stop)
            return ArrivalSchedule((Ramp(per_second, per_second, max(0.0, ends - at)),))

        self._reschedule(constant, RUN_TIME_OVER)
        self.load, self.plan, self.stage = LoadKind.ARRIVAL_RATE, (), ""
        text = f"arrival rate {before:g}/s → {per_second:g}/s"
        return self._record("arrival_rate", text)

    def _set_rate_plan(
        self, plan: str, new: tuple[PlanStage, ...], open_model: OpenModel
    ) -> ControlReply:
        before = open_model.rate_now()
        timetable = open_model.timetable

        def from_now(at: float) -> ArrivalSchedule:  # its first stage ramps from the rate asked
            return ArrivalSchedule.of_plan(new, timetable.rate_at(at))

        self._reschedule(from_now, PLAN_OVER, new)
        self.load, self.plan, self.stage = LoadKind.PLAN, new, ""
        self.end_changed = True
        return self._record("plan", f"plan → {plan} (from {before:g}/s)")

    def _reschedule(self, schedule_at: Callable[[float], ArrivalSchedule], ends_run: str,
                    stages: tuple[PlanStage, ...] | None = ()) -> None:  # fmt: skip
        assert self.run.open_model is not None
        lead = self.run.reschedule_lead
        self.run.rescheduled(self.run.open_model.replace(schedule_at, ends_run, lead, stages))

    def stop(self, reason: str) -> ControlReply:
        if not self.run.stopping.is_set():
            self._record("stop", f"stop: {reason}")
            self.run.stop(reason)
        return self.status()
