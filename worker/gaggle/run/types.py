"""What a run is given and what it gives back — the plan and its ``LoadKind``, the result, the
tally a session reads. This is their home: the facade, the roles, the CLI and the operator import
them from here, without the lifecycle's imports (``session.py`` pulls in the report and the web
app)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from rich.console import Console

from gaggle.load import LoadShape, Segment
from gaggle.metrics import Metrics, RunTotals, TaskNames, Verdict
from gaggle.options import RunConfig
from gaggle.taskset import TaskSet


class LoadKind(enum.StrEnum):
    """What says how much load a run has, decided once from the options and the test file (the
    control API's /api/status names it as ``load``; a live change may turn one into another)."""

    USERS = "users"  # -u at -r, until -t or a signal
    ITERATIONS = "iterations"  # -u at -r, each user its --iterations passes
    PLAN = "plan"  # --test-plan: of users, or of rates (an open model)
    SHAPE = "shape"  # a LoadShape in the test file
    ARRIVAL_RATE = "arrival_rate"  # --arrival-rate: an open model at one rate

    @classmethod
    def of(cls, config: RunConfig, shape: type[LoadShape] | None) -> LoadKind:
        if config.arrival_rate > 0:
            return cls.ARRIVAL_RATE
        if config.test_plan:
            return cls.PLAN
        if shape is not None:
            return cls.SHAPE
        return cls.ITERATIONS if config.iterations else cls.USERS

    @property
    def staged(self) -> bool:
        """A plan or a shape: the run goes through stages and ends with them."""
        return self in (LoadKind.PLAN, LoadKind.SHAPE)


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
    shape: type[LoadShape] | None = None  # its ticks drive the users (gaggle.load.shape)
    arrival_first: int = 0  # an open model's worker starts arrivals first, first + stride, …
    arrival_stride: int = 1
    timetable: tuple[Segment, ...] = ()  # a late worker's: the schedules its manager follows
    joined: float = 0.0  # a late worker's start, in seconds of the run's schedule

    @property
    def load(self) -> LoadKind:
        return LoadKind.of(self.config, self.shape)

    @property
    def moves_users(self) -> bool:
        """A plan of users or a load shape moves the users over time; -u at -r starts them once,
        and an open model's plan moves arrivals, not users."""
        return self.load.staged and not self.config.open_model


def iterations_over(iterations: int) -> str:
    """Why an --iterations run stopped (its ``stopped_by``), in one process or a gaggle."""
    return f"every user ran its {iterations} iteration(s)"


@dataclass(slots=True)
class RunResult:
    """What a run measured. ``metrics`` covers ``duration`` seconds after the reset (or the
    whole run with --no-reset-metrics); ``hatch_metrics`` is what the reset set aside."""

    metrics: Metrics
    duration: float
    users: int
    stopped_by: str
    hatch_metrics: Metrics | None = None
    task_names: TaskNames = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)  # one per --threshold rule
    latency: str = ""  # which latency the response times are (the summary says it)
    warnings: list[str] = field(default_factory=list)  # e.g. coordinated omission likely
    # the whole run's totals as the run kept them (``RunTotals``); None: merged when asked
    whole: Metrics | None = field(default=None, repr=False, compare=False)

    @property
    def passed(self) -> bool:
        """Every threshold held (True when there are none)."""
        return all(verdict.passed for verdict in self.verdicts)

    def all_metrics(self) -> Metrics:
        """Everything the run did: the hatching phase and the measured phase merged (by the
        run as it went, when it handed its totals over: read them, don't change them)."""
        if self.whole is not None:
            return self.whole
        return Metrics.combined(self.hatch_metrics, self.metrics)


class Tally(Protocol):
    """The run's numbers: a ``metrics.ledger.Ledger`` here, merged deltas on a manager."""

    def metrics(self) -> Metrics:
        """Counted since the last reset; reading takes nothing away."""
        ...

    def reset(self) -> Metrics:
        """Hand over what was counted and start again from zero."""
        ...

    def run_totals(self) -> RunTotals:
        """The whole run's totals, the hatching phase included, kept up to date as deltas
        arrive: what the readers that come every second read, without a copy."""
        ...
