"""Many request names: a run whose every request goes to a path of its own, standalone and in
Gaggle mode (a manager and two workers), each started with the CLI as a user would.

The issue's bar: 100,000 distinct names, totals equal to what the target served, no worker lost,
the manager's peak RSS ≤ 300 MB, and one warning (the request-names guard). Each run prints its
wall time, peak RSS (of the process that owns the numbers: the standalone run, the manager; and
the workers'), the requests counted against those the target served, the names in the JSON
report, how many times the guard warned and whether a worker was lost.

The target is benchmarks/target.py's asyncio server (it answers every path; nginx answers ``/``
only), pinned to one CPU. Load only ever goes to 127.0.0.1, and every child has a deadline.

    .venv/bin/python benchmarks/many_names.py [--names 100000] [--users 20] [--mode both]
        [--report both]   # each mode without -R and with -R report.json (what it adds)
        [--readers]       # the web app on, /metrics and /summary read each second
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from target import Target, free_port, start_target

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WARNING = "distinct request names (--request-names-limit"
RSS_BAR = 300 * 2**20  # the manager's peak RSS with 100,000 names (the bar)

PATHS = """
import itertools

from gaggle import TaskSet, constant, task

SENT = itertools.count()


class Paths(TaskSet):
    \"\"\"Every request to a path of its own: a user's index and this process's count make it
    unique across a gaggle's workers, and all digits, so the guard sees one pattern.\"\"\"

    wait_time = constant(0)

    @task
    async def a_new_path(self) -> None:
        await self.get(f"/item/{self.user_index * 10_000_000 + next(SENT)}")
"""


@dataclass
class Outcome:
    mode: str
    seconds: float
    code: int
    peak_rss: int  # bytes: the standalone run's, or the manager's
    worker_rss: list[int]
    counted: int
    served: int | None
    names: int
    warnings: int
    lost: bool
    stderr_tail: str

    def line(self) -> str:
        workers = ", ".join(f"{rss / 2**20:.0f}" for rss in self.worker_rss) or "-"
        exact = "yes" if self.counted == self.served else "NO"
        return (
            f"{self.mode:<13} {self.seconds:>6.1f} s  exit {self.code}  peak RSS "
            f"{self.peak_rss / 2**20:>5.0f} MiB (workers: {workers})  counted {self.counted:,} / "
            f"served {self.served if self.served is None else f'{self.served:,}'} (exact: {exact})"
            f"  names {self.names:,}  warnings {self.warnings}  worker lost: {self.lost}"
        )


def gaggle(*args: str) -> list[str]:
    return [sys.executable, "-m", "gaggle", "run", *args]


def wait_for(
    process: subprocess.Popen[bytes],
    deadline: float,
    each_second: Callable[[], None] = lambda: None,
) -> tuple[int, int]:
    """Reap a child we started, by its pid: (exit code, peak RSS in bytes); killed at the
    deadline. ``each_second``: what a reader does meanwhile, once a second."""
    next_read = time.monotonic() + 1
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return process.returncode, usage.ru_maxrss * 1024  # Linux: kilobytes
        if time.monotonic() >= next_read:
            each_second()
            next_read = time.monotonic() + 1
        if time.monotonic() > deadline:
            process.kill()
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
            return process.returncode, usage.ru_maxrss * 1024
        time.sleep(0.1)


def from_tables(out: str) -> tuple[int, int]:
    """(requests, names) from the final console tables: their Aggregated row, and their rows or
    the line under them that says how many names ``(other names)`` holds."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if "PER REQUEST METRICS" in line)
    rows = 0
    for line in lines[start + 3 :]:
        cells = re.split(r"\s{2,}", line.strip())
        if cells[0] == "Aggregated":
            counted = int(cells[1].replace(",", ""))
            break
        rows += cells[0].startswith("GET ")
    folded = re.search(r"sums ([\d,]+) request names past the ([\d,]+) busiest", out)
    if folded is None:
        return counted, rows
    return counted, sum(int(group.replace(",", "")) for group in folded.groups())


def reader(port: int) -> Callable[[], None]:
    """A scrape of /metrics and a read of /summary, as Prometheus and a dashboard would, each
    bounded in time; a refused one (the app not up yet, or gone) is skipped."""

    def read() -> None:
        for page in ("metrics", "summary"):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/{page}", timeout=5) as r:
                    r.read()
            except OSError:
                pass

    return read


def run(
    mode: str,
    target: Target,
    folder: Path,
    names: int,
    users: int,
    timeout: float,
    report: bool,
    readers: bool = False,
) -> Outcome:
    test, json_file = folder / "paths.py", folder / f"{mode}.json"
    test.write_text(PATHS)
    web_port = free_port()
    common = (
        "--host", target.url, "-u", str(users), "-r", "1000",
        "--iterations", str(names // users), "-t", f"{timeout:g}s", "--no-reset-metrics",
        "--only-summary", "--no-live", *(("-R", str(json_file)) if report else ()),
        *(("--metrics-bind", f"127.0.0.1:{web_port}") if readers else ()),
    )  # fmt: skip
    json_file.unlink(missing_ok=True)
    before = target.served() or 0
    out, err = folder / f"{mode}.out", folder / f"{mode}.err"
    started = time.monotonic()
    deadline = started + timeout + 60
    workers: list[subprocess.Popen[bytes]] = []
    with out.open("wb") as stdout, err.open("wb") as stderr:
        if mode == "standalone":
            owner = subprocess.Popen(
                gaggle(str(test), *common), stdout=stdout, stderr=stderr, cwd=ROOT
            )
        else:
            port = free_port()
            owner = subprocess.Popen(
                gaggle(str(test), *common, "--manager", "--expect-workers", "2",
                       "--manager-bind-host", "127.0.0.1", "--manager-bind-port", str(port)),
                stdout=stdout, stderr=stderr, cwd=ROOT,
            )  # fmt: skip
            for i in (1, 2):
                errors = (folder / f"worker-{i}.err").open("wb")
                argv = gaggle(str(test), "--worker", "--manager-port", str(port))
                workers.append(
                    subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=errors, cwd=ROOT)
                )
        code, peak = wait_for(owner, deadline, reader(web_port) if readers else lambda: None)
        worker_rss = [wait_for(worker, deadline + 30)[1] for worker in workers]
    seconds = time.monotonic() - started
    served = target.served()
    log = err.read_text(errors="replace")
    data = json.loads(json_file.read_text()) if json_file.exists() else None
    if data is not None:
        counted, held = data["requests_total"]["count"], len(data["requests"])
    else:
        counted, held = from_tables(out.read_text()) if code == 0 else (-1, -1)
    return Outcome(
        mode=f"{mode}{' -R' if report else ''}{' +web' if readers else ''}",
        seconds=seconds,
        code=code,
        peak_rss=peak,
        worker_rss=worker_rss,
        counted=counted,
        served=None if served is None else served - before,
        names=held,
        warnings=log.count(WARNING),
        lost="lost worker" in log or bool(data and data["run"]["workers_lost"]),
        stderr_tail=log[-1500:],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--names", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--mode", choices=("standalone", "gaggle", "both"), default="both")
    parser.add_argument("--timeout", type=float, default=600, help="each run's -t (s)")
    parser.add_argument(
        "--report", choices=("json", "none", "both"), default="both",
        help="-R report.json or none: what the report adds to the peak",
    )  # fmt: skip
    parser.add_argument(
        "--readers", action="store_true",
        help="the web app on (--metrics-bind), /metrics and /summary read each second",
    )  # fmt: skip
    args = parser.parse_args()
    modes = ("standalone", "gaggle") if args.mode == "both" else (args.mode,)
    reports = (False, True) if args.report == "both" else (args.report == "json",)
    with tempfile.TemporaryDirectory(prefix="many-names-") as tmp:
        folder = Path(tmp)
        target = start_target(0, folder, 4 * args.users, prefer_nginx=False)
        try:
            print(f"{args.names:,} names, {args.users} users, target: {target.kind}", flush=True)
            for mode in modes:
                for report in reports:
                    outcome = run(
                        mode, target, folder, args.names, args.users, args.timeout, report,
                        args.readers,
                    )  # fmt: skip
                    print(outcome.line(), flush=True)
                    if outcome.code != 0 or outcome.counted != outcome.served:
                        print(outcome.stderr_tail, flush=True)
                    if mode == "gaggle" and outcome.peak_rss > RSS_BAR:
                        print(
                            f"  the manager's peak RSS is over the bar ({RSS_BAR / 2**20:.0f} MiB)"
                        )
        finally:
            target.stop()


if __name__ == "__main__":
    main()
