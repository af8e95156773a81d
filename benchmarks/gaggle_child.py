"""One Gaggle run in this process, for ``throughput.py``: results are written as JSON.

It uses the programmatic API (``gaggle.Attack``), the same engine ``gaggle run`` drives, so the
figures come from Gaggle's own ``RunResult``: total requests over the run's duration, timed
from the start of hatching (``no_reset_metrics``) to the moment every user has stopped.

    python benchmarks/gaggle_child.py --host http://127.0.0.1:8080 --users 50 --seconds 15 \
        --out result.json [--http-client httptools] [--wait 10] [--profile profile.txt] \
        [--live-view on|off]

Without ``--live-view`` it prints only the summary. ``--live-view on`` prints what ``gaggle run``
prints, the live view included when stdout is a terminal (``live_view.py`` runs it on a pty);
``off`` the same with ``--no-live``.

``hatch_seconds`` in the result is how long launching every user took (the runner's
``on_hatched``), first requests included, since they share the event loop with the launching.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from gaggle import Attack, RunResult, TaskSet, constant, task
from gaggle.report.figures import FigureSampler
from gaggle.report.live import TerminalPanel
from gaggle.run.process import run_on_best_loop
from gaggle.run.runner import Runner

# throughput.py starts this file with -P: benchmarks/gaggle.py would shadow the gaggle package.
# Its sibling target.py is found after the package, from the end of the path.
sys.path.append(str(Path(__file__).resolve().parent))
from target import raise_nofile_limit

T = TypeVar("T")


class Bench(TaskSet):
    """One GET of the front page per task; ``--wait`` sets a constant pause after it."""

    @task
    async def index(self) -> None:
        await self.get("/")


def peak_rss_kb() -> int:
    """This process's peak resident set size (VmHWM) in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def summarize(result: RunResult, hatch_seconds: float) -> dict[str, Any]:
    totals = result.metrics.aggregated_requests()
    errors = sorted(result.metrics.errors.items(), key=lambda kv: -kv[1])[:3]
    return {
        "requests": totals.count,
        "failures": totals.fail_count,
        "duration": result.duration,
        "users": result.users,
        "errors": dict(errors),
        "peak_rss_kb": peak_rss_kb(),
        "hatch_seconds": hatch_seconds,
        "cpu_seconds": time.process_time() - CPU_AT_START[0],  # the run's, start-up left out
        "view_cpu_seconds": VIEW_CPU[0],
    }


HATCH: list[float] = []  # [start, all users launched] in perf_counter seconds
CPU_AT_START = [0.0]
VIEW_CPU = [0.0]  # CPU seconds spent reading figures and drawing the panel (--live-view on)


def time_the_view() -> None:
    """Count the CPU time of the live view's once-a-second work (its reading and its drawing):
    a figure that the noise of a shared machine does not drown, unlike a throughput ratio."""

    def timed(method: Callable[..., T]) -> Callable[..., T]:
        def wrapper(*args: Any, **kwargs: Any) -> T:
            started = time.thread_time()
            try:
                return method(*args, **kwargs)
            finally:
                VIEW_CPU[0] += time.thread_time() - started

        return wrapper

    FigureSampler.sample = timed(FigureSampler.sample)  # type: ignore[method-assign]
    TerminalPanel.show = timed(TerminalPanel.show)  # type: ignore[method-assign]


def run(args: argparse.Namespace) -> RunResult:
    if args.wait > 0:
        Bench.wait_time = constant(args.wait)
    options: dict[str, object] = {
        "host": args.host,
        "users": args.users,
        "hatch_rate": args.hatch_rate,
        "run_time": args.seconds,
        "no_reset_metrics": True,
        "only_summary": args.live_view is None,
        "no_live": args.live_view == "off",
        "http_client": args.http_client,
    }
    if args.live_view == "on":
        time_the_view()
    plan = Attack(Bench).plan(options)
    plan.on_hatched = lambda: HATCH.append(time.perf_counter())
    HATCH.append(time.perf_counter())
    CPU_AT_START[0] = time.process_time()
    return run_on_best_loop(Runner(plan).run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--hatch-rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--wait", type=float, default=0.0, help="constant pause after each task")
    parser.add_argument("--http-client", default="httptools", help="httptools, reqwest or aiohttp")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--live-view", choices=("on", "off"), help="print as gaggle run does")
    parser.add_argument(
        "--profile", type=Path, help="run under cProfile; the top 25 here, all in FILE.pstats"
    )
    args = parser.parse_args()
    raise_nofile_limit()
    if args.profile is None:
        result = run(args)
    else:
        profiler = cProfile.Profile()
        result = profiler.runcall(run, args)
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(25)
        args.profile.write_text(text.getvalue())
        profiler.dump_stats(args.profile.with_suffix(".pstats"))  # for pstats: callers, diffs
    hatch_seconds = HATCH[1] - HATCH[0] if len(HATCH) == 2 else -1.0
    args.out.write_text(json.dumps(summarize(result, hatch_seconds)))


if __name__ == "__main__":
    main()
