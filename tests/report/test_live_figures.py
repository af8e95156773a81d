"""The live view's parts in-process: the rolling window of histogram deltas, the figures the
session hands it, the status line and the panel's width, and which view a run gets."""

from __future__ import annotations

import dataclasses
import io
import re

import pytest
from rich.console import Console

from gaggle.errors import ConfigError
from gaggle.metrics.histogram import Histogram
from gaggle.metrics.stats import Stats
from gaggle.metrics.window import RollingWindow
from gaggle.options.config import build_config
from gaggle.report.figures import (
    Figures,
    FigureSampler,
    LiveInputs,
    Progress,
    status_line,
)
from gaggle.report.live import NoView, StatusLines, TerminalPanel, open_view, render_panel


class Cumulative:
    """A run's cumulative figures, fed one second at a time."""

    def __init__(self) -> None:
        self.stats = Stats()

    def second(self, *times_us: int, failed: int = 0) -> Stats:
        for index, time_us in enumerate(times_us):
            self.stats.record(time_us, success=index >= failed)
        return self.stats


def observe(window: RollingWindow, at: float, stats: Stats) -> None:
    window.observe(at, stats.count, stats.fail_count, stats.histogram)


def test_the_window_holds_the_last_ten_seconds_and_nothing_older() -> None:
    window, run = RollingWindow(10), Cumulative()
    observe(window, 0, run.stats)
    for second in range(1, 11):  # ten seconds of 1 ms responses...
        observe(window, second, run.second(*[1000] * 100))
    assert window.percentile_us(0.99) == pytest.approx(1000, rel=0.01)
    for second in range(11, 21):  # ...then ten seconds of 100 ms ones push them all out
        observe(window, second, run.second(*[100_000] * 10))
    assert window.percentile_us(0.01) == pytest.approx(100_000, rel=0.01)
    assert window.requests == 100
    assert window.rate() == pytest.approx(10)
    assert window.last_rate() == pytest.approx(10)
    # the window's histogram is exactly the last ten seconds' responses, merged
    expected = Histogram()
    for _ in range(100):
        expected.record(100_000)
    assert window.histogram == expected


def test_the_window_mixes_the_seconds_it_holds_and_counts_failures() -> None:
    window, run = RollingWindow(10), Cumulative()
    observe(window, 0, run.stats)
    observe(window, 1, run.second(*[2000] * 90, failed=9))
    observe(window, 2, run.second(*[50_000] * 10, failed=1))
    assert window.percentile_us(0.5) == pytest.approx(2000, rel=0.01)
    assert window.percentile_us(0.95) == pytest.approx(50_000, rel=0.01)
    assert (window.requests, window.failures) == (100, 10)
    assert window.rate() == pytest.approx(50)
    assert window.last_rate() == pytest.approx(10)


def test_figures_that_start_again_from_zero_restart_the_window() -> None:
    window, run = RollingWindow(10), Cumulative()
    observe(window, 0, run.stats)
    observe(window, 1, run.second(*[1000] * 10))
    observe(window, 2, Stats())  # e.g. a tally reset under the window's feet
    assert window.percentile_us(0.5) is None
    assert window.rate() == 0
    fresh = Cumulative()
    observe(window, 3, fresh.second(*[3000] * 4))
    assert window.requests == 4


def test_the_sampler_reads_rates_percentiles_and_the_top_three_errors() -> None:
    run, errors = Cumulative(), {f"error {n}": n for n in range(1, 6)}
    clock = iter(range(100)).__next__
    sampler = FigureSampler(
        LiveInputs(
            progress=lambda: Progress(3, 10, "running"),
            users_running=lambda: 4,
            users_target=lambda: 5,
            run_so_far=lambda: (run.stats, errors),
            load_seconds=lambda: 2.0,
            workers=lambda: (2, 1),
        ),
        clock=lambda: float(clock()),
    )
    sampler.sample()
    run.second(*[4000] * 30, failed=3)
    figures = sampler.sample()
    assert figures.requests == 30
    assert figures.rate_now == figures.rate_window == pytest.approx(30)
    assert figures.rate_average == pytest.approx(15)
    assert figures.fail_share == pytest.approx(0.1)
    assert figures.p95_ms == pytest.approx(4, rel=0.01)
    assert figures.top_errors == [("error 5", 5), ("error 4", 4), ("error 3", 3)]
    assert figures.workers == (2, 1)
    assert figures.progress.fraction == pytest.approx(0.3)


def figures(**changes: object) -> Figures:
    base = Figures(
        progress=Progress(75, 300, "running"),
        users_target=1000,
        users_running=640,
        requests=12_345_678,
        rate_now=23_456.7,
        rate_window=21_000.0,
        rate_average=19_876.5,
        fail_share=0.0123,
        p50_ms=1.234,
        p95_ms=56.78,
        p99_ms=901.2,
        window_seconds=10,
        workers=(12, 3),
        top_errors=[("GET /a/very/long/path/" + "x" * 200 + ": status 503", 123_456)] * 3,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_the_status_line_says_time_users_rate_fails_and_p95() -> None:
    assert status_line(figures()) == (
        "gaggle 1:15/5:00 running | users 640/1000 | 21,000 req/s | fails 1.23% | p95 56.78 ms"
        " | workers 12 (3 lost)"
    )
    worker = figures(progress=Progress(7, 0, "hatching"), workers=None, p95_ms=None)
    assert status_line(worker, "worker") == (
        "worker 0:07 hatching | users 640/1000 | 21,000 req/s | fails 1.23% | p95 -"
    )


@pytest.mark.parametrize("width", [12, 30, 44, 60, 80, 200])
def test_no_line_of_the_panel_is_wider_than_the_terminal(width: int) -> None:
    console = Console(file=io.StringIO(), width=width, force_terminal=True, color_system=None)
    console.print(render_panel(figures(), width))
    lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 2 + 5 + 1 + 3  # borders, figures, workers, errors
    assert max(len(line) for line in lines) <= width
    if width >= 60:
        text = "\n".join(lines)
        assert "640/1000" in text
        assert "12 connected · 3 lost" in text
        assert re.search(r"time\s+1:15/5:00 █+░+\s+25%", text), text


def test_a_standalone_panel_has_no_workers_row() -> None:
    console = Console(file=io.StringIO(), width=80, force_terminal=True, color_system=None)
    console.print(render_panel(figures(workers=None, top_errors=[]), 80))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "workers" not in text
    assert "errors" not in text


def test_an_open_models_dropped_arrivals_show_in_the_panel_and_the_status_line() -> None:
    console = Console(file=io.StringIO(), width=80, force_terminal=True, color_system=None)
    console.print(render_panel(figures(dropped=1234), 80))
    assert "1,234 arrivals (no free user)" in console.file.getvalue()  # type: ignore[attr-defined]
    assert "dropped 1,234" in status_line(figures(dropped=1234))
    assert "dropped" not in status_line(figures())  # a closed model has none to show


def test_status_lines_come_every_interval_counted_in_readings() -> None:
    console = Console(file=io.StringIO(), width=80)
    lines = StatusLines(console, every=3)
    for _ in range(10):
        lines.show(figures())
    printed = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert len(printed) == 3  # after readings 4, 7 and 10: seconds 3, 6 and 9
    assert printed[0] == status_line(figures())


def test_which_view_a_run_gets() -> None:
    terminal = Console(file=io.StringIO(), force_terminal=True)
    log = Console(file=io.StringIO())
    config = build_config({})
    assert isinstance(open_view(config, terminal, owns_output=True), TerminalPanel)
    assert isinstance(open_view(config, log, owns_output=True), StatusLines)
    assert isinstance(open_view(config, terminal, owns_output=False), StatusLines)  # a worker
    verbose = build_config({"verbose": 1})  # logs on the terminal: lines, not a panel under them
    assert isinstance(open_view(verbose, terminal, owns_output=True), StatusLines)
    for quiet in ({"only_summary": True}, {"no_live": True}, {"no_metrics": True}):
        assert isinstance(open_view(build_config(quiet), terminal, owns_output=True), NoView)
    assert isinstance(open_view(build_config({"no_live": True}), log, owns_output=False), NoView)


def test_status_every_takes_a_duration_of_a_second_or_more() -> None:
    assert build_config({"status_every": "1m"}).status_every == 60
    assert build_config({}).status_every == 10
    with pytest.raises(ConfigError, match="--status-every"):
        build_config({"status_every": "0.5"})


class Writes(io.StringIO):
    """A terminal's file that keeps each write apart."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)

    def isatty(self) -> bool:
        return True


def test_each_frame_reaches_the_terminal_in_one_write_and_closing_erases_it() -> None:
    """No flicker: the old frame's erasure and the new frame are one write, never two."""
    file = Writes()
    panel = TerminalPanel(Console(file=file, width=80, force_terminal=True, color_system=None))
    panel.show(figures())
    panel.show(figures(requests=12_345_999))
    frames = [w for w in file.writes if "│ requests" in w]
    assert len(frames) == 2
    assert "12,345,678" in frames[0]
    assert "\x1b[1A" in frames[1]  # moves up over the old frame…
    assert "\x1b[2K" in frames[1]  # …erases it…
    assert "12,345,999" in frames[1]  # …and draws the new one, in the same write
    drawn = len(file.writes)
    panel.close()
    closing = "".join(file.writes[drawn:])
    assert closing.endswith("\x1b[2K")  # erased last (the pty tests check the screen after it)
