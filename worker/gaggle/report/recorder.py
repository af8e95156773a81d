"""``-R/--report-file``: sample the run each second, write the report file when it ends.

A standalone run and the manager use it the same way, with the ``Source`` their Prometheus
endpoint reads (on the manager: the merged totals of every worker):

    report = open_report(config, hosts, source)  # checks the paths first: a bad one stops here
    ...
    report.snapshot(so_far)  # the live page's data, each second it is open
    return report.finish(result)  # last sample, then the files

Each ``-R`` is a file, its format by extension: HTML, JSON, Markdown (``markdown``) or JUnit XML
(``junit``), all from the one data model. Each is written whole to a temporary name and renamed,
so a report is never half a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from gaggle._version import __version__
from gaggle.metrics import Metrics, Source, TaskNames, Verdict
from gaggle.options import REPORT_FORMATS, RunConfig
from gaggle.report.baseline import Baseline
from gaggle.report.html import render_html
from gaggle.report.junit import render_junit
from gaggle.report.logs import cannot_write, log_file_path
from gaggle.report.markdown import render_markdown
from gaggle.report.model import RunFacts, build_report, write_json
from gaggle.report.timeline import Timeline

log = logging.getLogger(__name__)
SAMPLE_INTERVAL = 1.0


class Outcome(Protocol):
    """What a finished run hands over (``RunResult``, which lives above this layer)."""

    @property
    def metrics(self) -> Metrics: ...
    @property
    def duration(self) -> float: ...
    @property
    def stopped_by(self) -> str: ...
    @property
    def task_names(self) -> TaskNames: ...
    @property
    def verdicts(self) -> list[Verdict]: ...
    @property
    def latency(self) -> str: ...
    @property
    def warnings(self) -> list[str]: ...


R = TypeVar("R", bound=Outcome)


@dataclass(frozen=True, slots=True)
class SoFar:
    """A run in progress as a report tells it: the measured metrics up to now."""

    metrics: Metrics
    duration: float
    stopped_by: str
    task_names: TaskNames
    verdicts: list[Verdict]
    latency: str = ""
    warnings: list[str] = field(default_factory=list)


def check_writable(path: str, option: str = "--report-file") -> None:
    """Fail before the run, not after an hour of load, when a file cannot be written: its
    directory is missing or a file, it is a directory, or it is read-only. Opening for append
    tells, and changes nothing (a file made for the test is removed)."""
    file = Path(path)
    existed = file.exists()
    try:
        with file.open("a"):
            pass
    except OSError as error:
        raise cannot_write(option, path, error) from None
    if not existed:
        file.unlink()


def check_output_paths(config: RunConfig, *, users_here: bool = True) -> None:
    """Every file this process will write (-L, -m, -d, -R), checked before anything is opened
    or truncated; raises ConfigError naming the first that cannot be written. ``users_here``:
    False on a manager, whose workers write -m and -d on their own machines."""
    for option, path in (
        ("--log-file", log_file_path(config)),
        ("--requests-file", config.requests_file if users_here else None),
        ("--debug-file", config.debug_file if users_here else None),
        *(("--report-file", report) for report in config.report_file),
    ):
        if path:
            check_writable(path, option)


SECRET_FLAGS = ("--control-token", "--gaggle-token")  # a report is shared: never their values


def redacted(argv: Sequence[str]) -> list[str]:
    """``argv`` with the values of ``SECRET_FLAGS`` replaced by ``REDACTED``."""
    shown, hide_next = [], False
    for arg in argv:
        flag, equals, _ = arg.partition("=")
        if hide_next:
            shown.append("REDACTED")
        elif equals and flag in SECRET_FLAGS:
            shown.append(f"{flag}=REDACTED")
        else:
            shown.append(arg)
        hide_next = not hide_next and arg in SECRET_FLAGS
    return shown


def command_line() -> str:
    """The command this process was started with, secrets hidden."""
    return shlex.join(redacted(sys.orig_argv))


class Report:
    """Samples while the run goes on; ``snapshot`` is the report so far (the live page's),
    ``finish`` writes a file per path in ``paths`` (each's format by extension)."""

    def __init__(
        self, paths: Sequence[str], config: RunConfig, hosts: Sequence[str], source: Source
    ) -> None:
        for path in paths:
            check_writable(path)
        self.paths, self.config, self.hosts, self.source = tuple(paths), config, list(hosts), source
        self.command = command_line()
        self.started = time.time()
        self.timeline = Timeline(source)
        # A timer, not a task: one left behind by a run that failed to start is simply dropped.
        self._loop = asyncio.get_running_loop()
        self._next_at = self._loop.time()
        self._timer = self._schedule()

    def _schedule(self) -> asyncio.TimerHandle:
        """Ticks on a fixed schedule; a late tick measures its real interval."""
        self._next_at = max(self._next_at + SAMPLE_INTERVAL, self._loop.time())
        return self._loop.call_at(self._next_at, self._tick)

    def _tick(self) -> None:
        try:
            self.timeline.sample()
        finally:
            self._timer = self._schedule()

    def close(self) -> None:
        """Stop sampling (also when the run ends early and no report is written)."""
        self._timer.cancel()

    test: tuple[str, str] | None = None  # set by ``compare_with``
    baseline: Baseline | None = None

    def snapshot(self, result: Outcome) -> dict[str, Any]:
        """The report's data as of now (the timeline up to its last sample)."""
        ended = time.time()
        facts = RunFacts(
            command=self.command,
            hosts=self.hosts,
            users=self.config.users,
            hatch_rate=self.config.hatch_rate,
            run_time=self.config.run_time,
            reset_metrics=not (self.config.no_reset_metrics or self.config.open_model),
            started=self.timeline.started or self.started,
            ended=ended,
            duration=result.duration,
            stopped_by=result.stopped_by,
            workers=self.timeline.max_workers,
            workers_lost=self.source.workers()[1],
            version=__version__,
            test_plan=self.config.test_plan,
            iterations=self.config.iterations,
            arrival_rate=self.config.arrival_rate,
            latency=result.latency,
            warnings=tuple(result.warnings),
            loop_lag=self.source.loop_lag_max(),
            test=self.test,
        )
        return build_report(
            facts, result.metrics, result.task_names, self.timeline, result.verdicts, self.baseline
        )

    def compare_with(self, test: tuple[str, str] | None, baseline: Baseline | None) -> None:
        """The run's test file (name, sha256) and its --baseline: the report says them."""
        self.test, self.baseline = test, baseline

    def finish(self, result: R) -> R:
        self.close()
        self.timeline.finish()
        if not self.paths:
            return result
        data = self.snapshot(result)
        for path in self.paths:
            try:
                write_report(path, data)
            except OSError as error:  # checked at the start; a disk can still fill up
                reason = error.strerror or error
                log.error("--report-file %s: could not write the report (%s)", path, reason)
            else:
                log.warning("report written to %s", path)
        return result


def write_report(path: str, data: dict[str, Any]) -> None:
    kind = REPORT_FORMATS[os.path.splitext(path)[1].lower()]
    temporary = Path(f"{path}.tmp-{os.getpid()}")
    try:
        with temporary.open("w", encoding="utf-8") as file:
            if kind == "html":
                file.write(render_html(data))
            elif kind == "markdown":
                file.write(render_markdown(data))
            elif kind == "junit":
                file.write(render_junit(data))
            else:  # row by row: 100,000 names are not held as one string
                write_json(data, file)
                file.write("\n")
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


class NoReport:
    """Without ``-R``: the same calls, doing nothing."""

    def close(self) -> None:
        return None

    def finish(self, result: R) -> R:
        return result


def open_report(
    config: RunConfig, hosts: Sequence[str], source: Source, live: bool = False
) -> Report | NoReport:
    """Call from inside the running event loop, before the load starts. ``live``: a live page
    reads the report as it grows, so it samples even without ``-R``."""
    if not config.report_file and not live:
        return NoReport()
    return Report(config.report_file, config, hosts, source)
