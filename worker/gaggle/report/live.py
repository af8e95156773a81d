"""What a run shows while it runs: a panel on a terminal, a status line in a log, or nothing.

- On a terminal, a compact panel (rich's ``Live``) redrawn once a second in place: progress over
  the run time, users, req/s now and on average, fails, p50/p95/p99 over the last 10 s, workers
  (a manager), the most frequent errors. It is never wider than the terminal (each line is cut to
  the width before rich sees it) and is erased when the run ends, so the final tables follow on a
  clean screen. Whatever is printed meanwhile — running tables, the hatch message, logs — goes
  above it: ``Live`` redirects stdout (and stderr when that is the terminal too).
- Elsewhere (CI, a pipe, ``kubectl logs``), on a worker, and with ``-v`` (the terminal shows
  logs then): one plain line every ``--status-every`` seconds (default 10), which a log keeps
  readable.
- ``--only-summary``, ``--no-live`` and ``--no-metrics``: neither.

The session calls ``keep_showing``; its work is one reading a second, never per request.
"""

from __future__ import annotations

import asyncio
import math
import sys
from typing import Protocol

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

from gaggle.options import RunConfig
from gaggle.report.figures import (
    Figures,
    FigureSampler,
    elapsed_text,
    ms_text,
    percent_text,
    status_line,
)
from gaggle.report.tables import readable

SAMPLE_INTERVAL = 1.0  # seconds between readings: the panel's refresh and the window's step
PANEL_WIDTH = 76  # at most; a narrower terminal gets a narrower panel
LABEL_WIDTH = 10
BORDER = 4  # the panel's two edges and their padding


class View(Protocol):
    def show(self, figures: Figures) -> None: ...
    def close(self) -> None: ...


class NoView:
    def show(self, figures: Figures) -> None:
        return None

    def close(self) -> None:
        return None


def bar(fraction: float, width: int, ascii_only: bool = False) -> Text:
    """A bar of ``width`` cells, ``fraction`` of them filled; visible without colour too."""
    width = max(0, width)
    done = min(width, max(0, math.floor(fraction * width + 1e-9)))
    full, empty = ("#", "-") if ascii_only else ("█", "░")
    return Text.assemble((full * done, "green"), (empty * (width - done), "grey50"))


def _row(label: str, value: Text | str, width: int) -> Text:
    line = Text(label.ljust(LABEL_WIDTH), style="bold")
    line.append_text(value if isinstance(value, Text) else Text(value))
    line.truncate(width, overflow="ellipsis")
    return line


def _bar_row(label: str, text: str, fraction: float | None, width: int, ascii_only: bool) -> Text:
    """``text`` then, room allowing, a bar and its percentage."""
    value = Text(text)
    if fraction is not None:
        percent = f" {100 * fraction:3.0f}%"
        room = width - LABEL_WIDTH - len(text) - 1 - len(percent)
        if room >= 5:
            value.append(" ")
            value.append_text(bar(fraction, min(room, 40), ascii_only))
            value.append(percent)
    return _row(label, value, width)


def render_panel(figures: Figures, width: int, ascii_only: bool = False) -> Panel:
    """The panel for a terminal ``width`` columns wide; no line is wider."""
    panel_width = max(BORDER + 1, min(width, PANEL_WIDTH))
    inner = panel_width - BORDER
    progress = figures.progress
    running, target = figures.users_running, figures.users_target
    lines = [
        _bar_row("time", elapsed_text(progress), progress.fraction, inner, ascii_only),
        _bar_row(
            "users", f"{running}/{target}", running / target if target else None, inner, ascii_only
        ),
        _row(
            "req/s",
            f"{readable(figures.rate_now)} now · {readable(figures.rate_average)} average",
            inner,
        ),
        _row("requests", f"{figures.requests:,} · fails {percent_text(figures.fail_share)}", inner),
        _row(
            f"last {figures.window_seconds:g}s",
            f"p50 {ms_text(figures.p50_ms)} · p95 {ms_text(figures.p95_ms)} · "
            f"p99 {ms_text(figures.p99_ms)}",
            inner,
        ),
    ]
    if figures.workers is not None:
        connected, lost = figures.workers
        lines.append(_row("workers", f"{connected} connected · {lost} lost", inner))
    if figures.dropped is not None:
        lines.append(_row("dropped", f"{figures.dropped:,} arrivals (no free user)", inner))
    for index, (error, count) in enumerate(figures.top_errors):
        lines.append(_row("errors" if index == 0 else "", f"{count:,}× {error}", inner))
    title = Text(f" gaggle · {progress.label} ")
    title.truncate(max(0, inner - 2), overflow="ellipsis")
    return Panel(Group(*lines), title=title, title_align="left", width=panel_width)


class TerminalPanel:
    """The panel in place on a terminal, redrawn when shown new figures, erased when closed."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._live = Live(
            console=console,
            auto_refresh=False,  # redrawn by show(), once a second: no thread of its own
            transient=True,  # erased at the end: the final tables follow on a clean screen
            redirect_stdout=True,
            # stderr is printed above the panel only when it is this terminal too; a log file
            # that stderr goes to keeps getting the logs
            redirect_stderr=sys.stderr.isatty(),
            vertical_overflow="crop",
        )
        self._started = False

    def show(self, figures: Figures) -> None:
        panel = render_panel(figures, self.console.width, self.console.options.ascii_only)
        if not self._started:
            self._live.update(panel)
            self._live.start()
            self._started = True
        self._live.update(panel, refresh=True)

    def close(self) -> None:
        if self._started:
            self._live.stop()
            self._started = False


class StatusLines:
    """A plain line every ``every`` seconds (counted in readings, so a slow second shifts none)."""

    def __init__(self, console: Console, every: float, role: str = "") -> None:
        self.console, self.role = console, role
        self._every = max(1, round(every / SAMPLE_INTERVAL))
        self._readings = 0

    def show(self, figures: Figures) -> None:
        self._readings += 1
        if (self._readings - 1) % self._every or self._readings == 1:
            return  # the first reading is at the start: nothing to say yet
        self.console.print(
            status_line(figures, self.role), markup=False, highlight=False, soft_wrap=True
        )

    def close(self) -> None:
        return None


def open_view(config: RunConfig, console: Console, *, owns_output: bool) -> View:
    """The view this run gets: see the module's docstring."""
    if config.no_live or config.no_metrics:
        return NoView()
    if not owns_output:  # a worker: its manager shows the gaggle; a line keeps its log alive
        return StatusLines(console, config.status_every, role="worker")
    if config.only_summary:
        return NoView()
    # With -v the terminal shows logs, and the panel would be redrawn under every line of them
    if console.is_terminal and not console.is_dumb_terminal and not config.verbose:
        return TerminalPanel(console)
    return StatusLines(console, config.status_every)


async def keep_showing(view: View, sampler: FigureSampler) -> None:
    """A reading every second on a fixed grid, until cancelled (the session does, at the end)."""
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    while True:
        view.show(sampler.sample())
        next_at += SAMPLE_INTERVAL
        await asyncio.sleep(max(0.0, next_at - loop.time()))
