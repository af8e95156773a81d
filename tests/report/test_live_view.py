"""The live view as users meet it: ``gaggle run`` as a real process on a pseudo-terminal (the
panel) and through a pipe (the status line), against the counting target on 127.0.0.1."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.conftest import (
    Target,
    free_port,
    kill_leftovers,
    run_gaggle,
    spawn_gaggle,
    write_test,
)
from tests.support.terminal import PtyProcess, plain, plain_lines, screen

TEST = """
from gaggle import TaskSet, task, constant

class Browsing(TaskSet):
    wait_time = constant(0.02)

    @task(weight=3)
    async def index(self) -> None:
        await self.get("/")

    @task
    async def missing(self) -> None:
        await self.get("/missing-page-with-a-rather-long-name-for-the-error-line")
"""
PANEL_TOP, PANEL_BOTTOM = "╭─  gaggle · ", "╰"
REQUESTS = re.compile(r"│ requests\s+([\d,]+) · fails")
STATUS_LINE = re.compile(
    r"^(?P<role>gaggle|worker) (?P<elapsed>\d+:\d\d)(?:/(?P<total>\d+:\d\d))?"
    r" (?P<label>[a-z ()/0-9]+)"
    r" \| users (?P<running>\d+)/(?P<target>\d+) \| (?P<rate>[\d,.]+) req/s"
    r" \| fails (?P<fails>[\d.]+)% \| p95 (?P<p95>[\d.,]+ ms|-)(?: \| workers (?P<workers>\d+).*)?$"
)


def loadtest(tmp_path: Path) -> str:
    return write_test(tmp_path, TEST)


def frame_counts(output: str) -> list[int]:
    """The request count of every panel frame, in the order they were drawn."""
    return [int(n.replace(",", "")) for n in REQUESTS.findall(plain(output))]


def assert_no_wider_than(output: str, columns: int) -> None:
    widest = max(plain_lines(output), key=len)
    assert len(widest) <= columns, f"{len(widest)} > {columns} columns: {widest!r}"


def assert_left_clean(pty: PtyProcess) -> None:
    """What the user is left with: the final tables, no trace of the panel, a visible cursor.
    Replayed on a screen taller than the pty, so what scrolled off stays in view."""
    shown = screen(pty.text, pty.columns, 2000)
    text = "\n".join(shown.display)
    assert "Aggregated" in text, text
    for trace in ("gaggle ·", "╭", "│ requests"):
        assert trace not in text, text
    assert not shown.cursor.hidden


def status_lines(stdout: str) -> list[re.Match[str]]:
    candidates = [line for line in stdout.splitlines() if line.startswith(("gaggle ", "worker "))]
    matches = [STATUS_LINE.match(line) for line in candidates]
    assert all(matches), candidates  # every status line has the documented shape
    return [m for m in matches if m is not None]


def test_the_panel_updates_in_place_and_the_final_tables_follow_on_a_clean_screen(
    target: Target, tmp_path: Path
) -> None:
    columns = 72
    pty = PtyProcess(
        "run", loadtest(tmp_path), "--host", target.url, "-u", "4", "-r", "100", "-t", "4",
        "--running-metrics", "2", "--no-task-metrics", columns=columns,
    )  # fmt: skip
    assert pty.finish() == 0, pty.text[-3000:]
    output = pty.text
    counts = [n for n in frame_counts(output) if n]
    assert len(set(counts)) >= 3, counts  # redrawn each second with new figures
    assert counts == sorted(counts), counts
    assert "gaggle · running" in plain(output)
    assert re.search(r"│ time\s+0:0\d/0:04 █+░*\s+\d+%", plain(output)), "no progress bar"
    assert "│ users     4/4 █" in plain(output)
    assert re.search(r"│ last 10s\s+p50 [\d.]+ ms · p95 [\d.]+ ms · p99 [\d.]+ ms", plain(output))
    assert "│ errors    " in plain(output)
    assert "GET /missing-page-with" in plain(output)
    assert "│ workers" not in plain(output)  # a standalone run has none
    # the hatch's and the running tables print above the panel, the final ones after it
    last_frame = output.rfind(PANEL_BOTTOM)
    assert plain(output[:last_frame]).count("PER REQUEST METRICS") >= 2
    assert "PER REQUEST METRICS" in plain(output[last_frame:])
    assert_no_wider_than(output, columns)
    assert_left_clean(pty)


def test_ctrl_c_erases_the_panel_of_a_narrow_terminal_before_the_final_tables(
    target: Target, tmp_path: Path
) -> None:
    columns = 44
    pty = PtyProcess(
        "run", loadtest(tmp_path), "--host", target.url, "-u", "3", "-r", "100",
        "--no-task-metrics", columns=columns, rows=20,
    )  # fmt: skip
    try:
        pty.read_until(lambda text: any(n > 0 for n in frame_counts(text)), timeout=15)
        pty.interrupt()
        assert pty.finish() == 0, pty.text[-3000:]
    finally:
        pty.close()
    output = pty.text
    assert "caught SIGINT" in plain(output)
    assert "PER REQUEST METRICS" in plain(output[output.rfind(PANEL_BOTTOM) :])
    assert_no_wider_than(output, columns)
    assert_left_clean(pty)


def test_a_pipe_gets_a_plain_status_line_every_interval(target: Target, tmp_path: Path) -> None:
    done = run_gaggle(
        "run", loadtest(tmp_path), "--host", target.url, "-u", "2", "-r", "100", "-t", "4",
        "--status-every", "1",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = status_lines(done.stdout)
    assert len(lines) >= 3, done.stdout  # one a second, in about 4 s after the hatch
    assert [m["elapsed"] for m in lines] == sorted(m["elapsed"] for m in lines)
    assert {m["total"] for m in lines} == {"0:04"}
    assert all(m["running"] == m["target"] == "2" for m in lines)
    assert float(lines[-1]["rate"].replace(",", "")) > 0
    assert lines[-1]["p95"] != "-"
    assert abs(float(lines[-1]["fails"]) - 25) < 10  # one task in four asks for a missing page
    assert "\x1b" not in done.stdout  # no escapes
    assert "╭" not in done.stdout  # no panel
    # the lines come before the final tables
    assert done.stdout.rfind("PER REQUEST METRICS") > done.stdout.find(lines[-1].string)


def test_only_summary_and_no_live_show_neither_panel_nor_status_line(
    target: Target, tmp_path: Path
) -> None:
    test = loadtest(tmp_path)
    common = ("run", test, "--host", target.url, "-u", "2", "-r", "100", "-t", "2.5",
              "--status-every", "1")  # fmt: skip
    terminals = [PtyProcess(*common, flag, columns=80) for flag in ("--only-summary", "--no-live")]
    pipes = [spawn_gaggle(*common, flag) for flag in ("--only-summary", "--no-live")]
    try:
        for pty in terminals:
            assert pty.finish() == 0, pty.text[-2000:]
            assert "╭" not in pty.text, pty.text[-2000:]
            assert "gaggle ·" not in plain(pty.text)
            assert "PER REQUEST METRICS" in plain(pty.text)
        for pipe in pipes:
            stdout, stderr = pipe.communicate(timeout=30)
            assert pipe.returncode == 0, stderr
            assert status_lines(stdout) == [], stdout
            assert "PER REQUEST METRICS" in stdout
    finally:
        kill_leftovers(*pipes)
        for pty in terminals:
            pty.close()


def test_the_default_interval_keeps_a_short_run_free_of_status_lines(
    target: Target, tmp_path: Path
) -> None:
    done = run_gaggle("run", loadtest(tmp_path), "--host", target.url, "-u", "1", "-t", "1")
    assert done.returncode == 0, done.stderr
    assert status_lines(done.stdout) == []


def test_the_managers_panel_shows_its_workers_and_each_worker_prints_status_lines(
    target: Target, tmp_path: Path
) -> None:
    test, port = loadtest(tmp_path), free_port()
    manager = PtyProcess(
        "run", test, "--manager", "--expect-workers", "2", "--manager-bind-host", "127.0.0.1",
        "--manager-bind-port", str(port), "--metrics-bind", f"127.0.0.1:{free_port()}",
        "--host", target.url, "-u", "4", "-r", "100", "-t", "3", columns=90,
    )  # fmt: skip
    workers: list[subprocess.Popen[str]] = []
    try:
        manager.read_until(lambda text: "waiting for workers (0/2)" in text, timeout=15)
        workers = [
            spawn_gaggle(
                "run", test, "--worker", "--manager-port", str(port), "--status-every", "1"
            )
            for _ in range(2)
        ]
        assert manager.finish() == 0, manager.text[-3000:]
        outputs = [worker.communicate(timeout=20) for worker in workers]
        assert [worker.returncode for worker in workers] == [0, 0], outputs
    finally:
        kill_leftovers(*workers)
        manager.close()
    shown = plain(manager.text)
    assert "│ workers   2 connected · 0 lost" in shown
    assert "gaggle · running" in shown
    assert_left_clean(manager)
    for stdout, _ in outputs:
        lines = status_lines(stdout)
        assert len(lines) >= 2, stdout
        assert all(m["role"] == "worker" and m["target"] == "2" for m in lines)
        assert lines[-1]["total"] is None  # a worker's run time is its manager's
