"""Coordinated omission in a closed model: when slow responses hold users back, they send fewer
requests, and the percentiles describe only the requests that were sent.

The heuristic compares the users' cadence with what their task sets imply. A user of a task set
with a mean pause *w* (``constant``: its seconds; ``between(a, b)``: (a+b)/2; no wait: 0) whose
median task takes *m* seconds runs about 1/(m + w) tasks a second (``pacing(p)``: 1/max(p, m)) —
what a healthy target lets it do. Summed over the users (shared by task-set weight), that is the
implied task rate. When the achieved rate is below ``CADENCE_FLOOR`` of it, some tasks took far
longer than the median for long enough to matter: the summary says so. It is only asked for a
steady closed run measured after the hatch (not a plan, a shape, --iterations or
--no-reset-metrics, whose users come and go by design), with task metrics and known waits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gaggle.metrics import Metrics, Stats
from gaggle.options import RunConfig
from gaggle.run.types import LoadKind
from gaggle.taskset import TaskSet
from gaggle.wait import between, constant, pacing

CADENCE_FLOOR = 0.75  # achieved/implied below this: the users' cadence collapsed


@dataclass(frozen=True, slots=True)
class Cadence:
    achieved: float  # tasks per second the users ran
    implied: float  # tasks per second their waits and median task times imply

    @property
    def share(self) -> float:
        return self.achieved / self.implied if self.implied > 0 else 1.0


def _seconds_per_task(taskset: type[TaskSet], median: float) -> float | None:
    wait = taskset.wait_time
    if wait is None:
        return median
    if isinstance(wait, pacing):
        return max(wait.seconds, median)
    if isinstance(wait, constant):
        return median + wait.seconds
    if isinstance(wait, between):
        return median + (wait.low + wait.high) / 2
    return None  # a function of its own: its mean is unknown


def cadence(
    metrics: Metrics, tasksets: Sequence[type[TaskSet]], users: int, duration: float
) -> Cadence | None:
    """The achieved and implied task rates, or None when they cannot be told."""
    if duration <= 0 or users <= 0 or not metrics.tasks or not tasksets:
        return None
    weights = sum(ts.weight for ts in tasksets)
    achieved = implied = 0.0
    for index, taskset in enumerate(tasksets):
        ran = Stats()
        for (taskset_index, _), stats in metrics.tasks.items():
            if taskset_index == index:
                ran.merge(stats)
        if not ran.timed_count:
            continue
        per_task = _seconds_per_task(taskset, ran.percentile_us(0.5) / 1e6)
        if per_task is None:
            return None
        if per_task <= 0:
            continue  # tasks that take no time and no pause: no cadence to lose
        implied += users * taskset.weight / weights / per_task
        achieved += ran.count / duration
    return Cadence(achieved, implied) if implied > 0 else None


def omission_warning(
    metrics: Metrics, tasksets: Sequence[type[TaskSet]], users: int, duration: float
) -> str | None:
    """The summary's line when the closed model's cadence collapsed, else None."""
    found = cadence(metrics, tasksets, users, duration)
    if found is None or found.share >= CADENCE_FLOOR:
        return None
    return (
        f"coordinated omission likely: the users ran {found.achieved:.3g} tasks/s where their "
        f"wait_time and median task time imply {found.implied:.3g}/s ({found.share:.0%}); "
        "slow responses held them back, so the percentiles leave out the requests they did not "
        "send — measure with --arrival-rate (an open model)"
    )


def latency_note(config: RunConfig, tasksets: Sequence[type[TaskSet]]) -> str:
    """Which latency the tables' response times are, as the summary says it."""
    paced = any(isinstance(ts.wait_time, pacing) for ts in tasksets)
    if not (config.open_model or paced):
        return "service time, from sending each request to the end of its body"
    scheduled = "an arrival's" if config.open_model else "a paced task's"
    if config.latency == "intended":
        return (
            f"from the intended start: {scheduled} first request is timed from when it was due "
            "(a stall shows), the others from their sending; --latency service for service time"
        )
    return (
        "service time, from sending each request to the end of its body (--latency service; "
        f"the default, intended, times {scheduled} first request from when it was due)"
    )


def summary_warnings(
    config: RunConfig,
    tasksets: Sequence[type[TaskSet]],
    load: LoadKind,
    hatched: bool,
    metrics: Metrics,
    duration: float,
) -> tuple[str, ...]:
    """The summary's warnings: coordinated omission, judged on a steady closed run after the
    hatch (a plan's, a shape's or --iterations' users come and go by design)."""
    if load is not LoadKind.USERS or config.no_reset_metrics or not hatched:
        return ()
    warning = omission_warning(metrics, tasksets, config.users, duration)
    return (warning,) if warning else ()
