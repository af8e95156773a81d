"""``RunResult``: what a finished run hands back — to ``Attack.run``, the report and the exit
code — and ``judge``, its verdicts on the --threshold rules.

They live apart from the session that fills them so the session's module stays about the run's
lifecycle; ``gaggle.session`` re-exports ``RunResult``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from rich.console import Console

from gaggle.config import RunConfig
from gaggle.metrics.aggregate import Metrics, TaskNames
from gaggle.report.tables import print_verdicts
from gaggle.thresholds import Verdict, evaluate

log = logging.getLogger("gaggle")


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

    @property
    def passed(self) -> bool:
        """Every threshold held (True when there are none)."""
        return all(verdict.passed for verdict in self.verdicts)

    def all_metrics(self) -> Metrics:
        """Everything the run did: the hatching phase and the measured phase merged."""
        return Metrics.combined(self.hatch_metrics, self.metrics)


def judge(config: RunConfig, console: Console, metrics: Metrics, duration: float) -> list[Verdict]:
    """Evaluate the --threshold rules on the measured metrics and print the verdicts."""
    verdicts = evaluate(config.threshold_rules, metrics, duration)
    if not config.no_metrics:
        print_verdicts(console, verdicts)
    for verdict in verdicts:
        if not verdict.passed:
            log.warning("threshold failed: %s (observed %s)", verdict.expression, verdict.observed)
    return verdicts
