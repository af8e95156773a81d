"""The figures of a run in progress, read once a second, and the one-line status that shows them.

``FigureSampler.sample()`` reads what the session already keeps — its tally's totals, its users,
its workers, how far the run is — and a ``RollingWindow`` turns the cumulative totals into "the
last second" and "the last 10 s". Both the terminal panel (``report.live``) and the plain status
line of a log (CI, a pipe, ``kubectl logs``) show these ``Figures``; nothing here runs per request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gaggle.metrics import RollingWindow, Stats
from gaggle.report.tables import readable

TOP_ERRORS = 3


@dataclass(frozen=True, slots=True)
class Progress:
    """How far the run is. The session says it; a staged test plan can say it for its stages
    (``label`` a stage's name, ``elapsed``/``total`` that stage's or the whole plan's seconds)."""

    elapsed: float  # seconds of the run time so far
    total: float  # the run time; 0 when the run goes on until stopped
    label: str = "running"  # "hatching", "stopping", "waiting for workers (1/2)", a stage…

    @property
    def fraction(self) -> float | None:
        """0..1 of the run time; None when there is no run time to fill."""
        if self.total <= 0:
            return None
        return min(1.0, max(0.0, self.elapsed / self.total))


@dataclass(frozen=True, slots=True)
class Figures:
    progress: Progress
    users_target: int
    users_running: int
    requests: int  # since the first user started
    rate_now: float  # requests/s over the last reading's interval (about a second)
    rate_window: float  # requests/s over the rolling window
    rate_average: float  # requests/s since the first user started
    fail_share: float  # 0..1, since the first user started
    p50_ms: float | None  # over the rolling window; None when nothing was timed in it
    p95_ms: float | None
    p99_ms: float | None
    window_seconds: float
    workers: tuple[int, int] | None = None  # (connected, lost) on a manager; None elsewhere
    dropped: int | None = None  # an open model's dropped arrivals so far; None in a closed one
    top_errors: list[tuple[str, int]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class LiveInputs:
    """Where the figures come from: callables the session binds to what it already keeps."""

    progress: Callable[[], Progress]
    users_running: Callable[[], int]
    users_target: Callable[[], int]  # a plan's or shape's moves
    # aggregated request stats and error counts since the first user (the hatch reset undone)
    run_so_far: Callable[[], tuple[Stats, dict[str, int]]]
    load_seconds: Callable[[], float]  # since the first user started; 0 before
    workers: Callable[[], tuple[int, int]] | None = None  # a manager's (connected, lost)
    dropped: Callable[[], int] | None = None  # an open model's dropped arrivals so far


class FigureSampler:
    """Call ``sample()`` about once a second; each call is one reading of the window."""

    def __init__(
        self,
        inputs: LiveInputs,
        window: RollingWindow | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inputs, self.clock = inputs, clock
        self.window = window or RollingWindow()

    def sample(self) -> Figures:
        inputs, window = self.inputs, self.window
        stats, errors = inputs.run_so_far()
        window.observe(self.clock(), stats.count, stats.fail_count, stats.histogram)
        seconds = inputs.load_seconds()

        def ms(quantile: float) -> float | None:
            value = window.percentile_us(quantile)
            return None if value is None else value / 1000

        top = sorted(errors.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_ERRORS]
        return Figures(
            progress=inputs.progress(),
            users_target=inputs.users_target(),
            users_running=inputs.users_running(),
            requests=stats.count,
            rate_now=window.last_rate(),
            rate_window=window.rate(),
            rate_average=stats.count / seconds if seconds > 0 else 0.0,
            fail_share=stats.fail_count / stats.count if stats.count else 0.0,
            p50_ms=ms(0.5),
            p95_ms=ms(0.95),
            p99_ms=ms(0.99),
            window_seconds=window.span,
            workers=inputs.workers() if inputs.workers is not None else None,
            dropped=inputs.dropped() if inputs.dropped is not None else None,
            top_errors=top,
        )


def clock_text(seconds: float) -> str:
    """``0:07``, ``12:30``, ``1:02:03``."""
    whole = int(max(0.0, seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def elapsed_text(progress: Progress) -> str:
    """``0:07/1:00``, or ``0:07`` when the run goes on until stopped."""
    if progress.total > 0:
        return f"{clock_text(progress.elapsed)}/{clock_text(progress.total)}"
    return clock_text(progress.elapsed)


def ms_text(value: float | None) -> str:
    return "-" if value is None else f"{readable(value)} ms"


def percent_text(share: float) -> str:
    return f"{100 * share:.2f}%"


def status_line(figures: Figures, role: str = "") -> str:
    """One plain line for a log: elapsed/run time, users, req/s and p95 over the window, fails.

    ``gaggle 0:20/1:00 running | users 50/50 | 1,234 req/s | fails 0.00% | p95 12.3 ms``
    """
    progress = figures.progress
    parts = [
        f"{role or 'gaggle'} {elapsed_text(progress)} {progress.label}",
        f"users {figures.users_running}/{figures.users_target}",
        f"{readable(figures.rate_window)} req/s",
        f"fails {percent_text(figures.fail_share)}",
        f"p95 {ms_text(figures.p95_ms)}",
    ]
    if figures.workers is not None:
        connected, lost = figures.workers
        parts.append(f"workers {connected}" + (f" ({lost} lost)" if lost else ""))
    if figures.dropped is not None:
        parts.append(f"dropped {figures.dropped:,}")
    return " | ".join(parts)
