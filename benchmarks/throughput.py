"""Gaggle's throughput and memory, measured against Locust in the same run on the same machine.

What it measures, in one invocation (about 1.5 minutes by default, ``--quick`` for 5 s runs):

1. **Throughput per core.** A fast local target (Debian's nginx when installed, else a small
   asyncio server) runs pinned to one CPU; each load generator runs pinned to another CPU with
   50 users, no wait time, for 15 s. Gaggle (aiohttp on uvloop) and Locust's FastHttpUser
   (geventhttpclient) take turns against the same target; each tool's rate is its own count
   of requests over its own run duration, and the target's own count is shown beside it.
2. **Memory of idle users.** Gaggle with 10,000 users that each make one GET, then pause 10 s,
   hatched at 2,000 users/s and run for 30 s: the peak RSS of the Gaggle process.

Why a peer in the same run: absolute requests per second depend on the CPU, the kernel and
whatever else the machine is doing, so they cannot be compared across machines or days. The
ratio Gaggle/Locust, measured minutes apart on the same pinned core against the same target,
can. The bars from the issue are Gaggle ≥ 1.2× Locust FastHttpUser req/s per core, and 10k idle
users ≤ 250 MB RSS. Peak RSS is VmHWM of the generator's process, read from /proc while it runs.

Load only ever goes to 127.0.0.1, and every child process has a deadline.

    .venv/bin/python benchmarks/throughput.py [--seconds 15] [--users 50] [--quick]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from target import Target, pinned_to, start_target

HERE = Path(__file__).resolve().parent
THROUGHPUT_BAR = 1.2  # Gaggle req/s ÷ Locust FastHttpUser req/s, per core
IDLE_RSS_BAR_MB = 250.0  # peak RSS of 10k idle users
GRACE = 90.0  # seconds a child may take beyond its run time (start-up, 10k users stopping)


@dataclass
class Measurement:
    tool: str
    requests: int
    failures: int
    duration: float
    peak_rss_kb: int
    served: int | None = None  # what the target counted during the run
    note: str = ""

    @property
    def rate(self) -> float:
        return self.requests / self.duration if self.duration > 0 else 0.0

    @property
    def rss_mb(self) -> float:
        return self.peak_rss_kb / 1024


# --- running a pinned child ------------------------------------------------------------------
def choose_cores() -> tuple[int, int]:
    """(generator core, target core): two different CPUs when this process may use two."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        print("warning: one CPU only; generator and target share it", file=sys.stderr)
        return cores[0], cores[0]
    return cores[0], cores[1]


def vm_hwm_kb(pid: int) -> int:
    """Peak RSS so far of a running process (0 once it has exited)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def run_pinned(argv: list[str], core: int, timeout: float, log: Path) -> tuple[int, int]:
    """Run ``argv`` on ``core`` until it exits or ``timeout`` passes; (exit code, peak KiB)."""
    with log.open("wb") as out:
        child = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, preexec_fn=pinned_to(core)
        )
        peak, deadline = 0, time.monotonic() + timeout
        try:
            while child.poll() is None:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{argv[:3]} still running after {timeout:.0f} s; see {log}")
                peak = max(peak, vm_hwm_kb(child.pid))
                time.sleep(0.1)
        finally:
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait(timeout=10)
    return child.returncode, peak


def tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# --- the two tools ---------------------------------------------------------------------------
@dataclass
class Scenario:
    users: int
    hatch_rate: float
    seconds: int
    wait: float  # seconds of constant pause after each request; 0 for none


def measure_gaggle(
    target: Target, scenario: Scenario, core: int, workdir: Path, profile: Path | None = None
) -> Measurement:
    out = workdir / f"gaggle-{scenario.users}.json"
    log = workdir / f"gaggle-{scenario.users}.log"
    argv = [
        sys.executable,
        str(HERE / "gaggle_child.py"),
        f"--host={target.url}",
        f"--users={scenario.users}",
        f"--hatch-rate={scenario.hatch_rate}",
        f"--seconds={scenario.seconds}",
        f"--wait={scenario.wait}",
        f"--out={out}",
    ]
    if profile is not None:
        argv.append(f"--profile={profile}")
    before = target.served()
    code, peak = run_pinned(argv, core, scenario.seconds + GRACE, log)
    if code != 0 or not out.exists():
        raise RuntimeError(f"gaggle exited with {code}:\n{tail(log)}")
    result = json.loads(out.read_text())
    errors = result["errors"]
    return Measurement(
        tool="gaggle (aiohttp)",
        requests=result["requests"],
        failures=result["failures"],
        duration=result["duration"],
        peak_rss_kb=max(peak, result["peak_rss_kb"]),
        served=difference(before, target.served()),
        note=f"errors: {errors}" if errors else "",
    )


def measure_locust(target: Target, scenario: Scenario, core: int, workdir: Path) -> Measurement:
    prefix = workdir / "locust"
    log = workdir / "locust.log"
    argv = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(HERE / "locustfile.py"),
        "--headless",
        f"--users={scenario.users}",
        f"--spawn-rate={scenario.hatch_rate}",
        f"--run-time={scenario.seconds}s",
        f"--host={target.url}",
        "--only-summary",
        f"--csv={prefix}",
    ]
    before = target.served()
    code, peak = run_pinned(argv, core, scenario.seconds + GRACE, log)
    stats = Path(f"{prefix}_stats.csv")
    if code not in (0, 1) or not stats.exists():  # 1: the run had failed requests
        raise RuntimeError(f"locust exited with {code}:\n{tail(log)}")
    requests, failures, rate = read_locust_totals(stats)
    return Measurement(
        tool="locust FastHttpUser",
        requests=requests,
        failures=failures,
        # Locust's own duration: from the start of spawning to its last request.
        duration=requests / rate if rate > 0 else 0.0,
        peak_rss_kb=peak,
        served=difference(before, target.served()),
    )


def read_locust_totals(stats_csv: Path) -> tuple[int, int, float]:
    """(requests, failures, requests/s) from the "Aggregated" row of Locust's stats CSV."""
    with stats_csv.open(newline="") as file:
        for row in csv.DictReader(file):
            if row["Name"] == "Aggregated":
                return (
                    int(row["Request Count"]),
                    int(row["Failure Count"]),
                    float(row["Requests/s"]),
                )
    raise RuntimeError(f"no Aggregated row in {stats_csv}")


def difference(before: int | None, after: int | None) -> int | None:
    return after - before if before is not None and after is not None else None


# --- printing --------------------------------------------------------------------------------
def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def print_rows(rows: list[Measurement]) -> None:
    print(
        f"  {'tool':<22}{'requests':>10}{'fails':>7}{'seconds':>9}{'req/s':>10}"
        f"{'peak RSS MB':>13}{'target saw':>12}"
    )
    for m in rows:
        served = "-" if m.served is None else str(m.served)
        print(
            f"  {m.tool:<22}{m.requests:>10}{m.failures:>7}{m.duration:>9.2f}{m.rate:>10.0f}"
            f"{m.rss_mb:>13.1f}{served:>12}"
        )
        if m.note:
            print(f"    {m.note}")


def report_throughput(gaggle: Measurement, locust: Measurement | None, scenario: Scenario) -> None:
    print(
        f"\nThroughput: {scenario.users} users, no wait, {scenario.seconds} s per tool, "
        "one generator core"
    )
    print_rows([gaggle] if locust is None else [gaggle, locust])
    if locust is None or locust.rate <= 0:
        return
    ratio = gaggle.rate / locust.rate
    print(
        f"  gaggle / locust: req/s {ratio:.2f}×, peak RSS {gaggle.rss_mb / locust.rss_mb:.2f}×"
        f"   bar: req/s ≥ {THROUGHPUT_BAR}×  {verdict(ratio >= THROUGHPUT_BAR)}"
    )


def report_idle(idle: Measurement, scenario: Scenario) -> None:
    print(
        f"\nIdle users: {scenario.users} users, one GET then constant({scenario.wait:g}), "
        f"hatch {scenario.hatch_rate:g}/s, {scenario.seconds} s"
    )
    print_rows([idle])
    per_user_kb = idle.peak_rss_kb / scenario.users
    ok = idle.rss_mb <= IDLE_RSS_BAR_MB
    print(
        f"  peak RSS {idle.rss_mb:.0f} MB ({per_user_kb:.1f} KiB per user)"
        f"   bar: ≤ {IDLE_RSS_BAR_MB:.0f} MB  {verdict(ok)}"
    )


# --- main ------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Gaggle vs Locust: req/s per core and memory.")
    parser.add_argument("--seconds", type=int, default=15, help="throughput run per tool")
    parser.add_argument("--users", type=int, default=50, help="users in the throughput runs")
    parser.add_argument("--idle-users", type=int, default=10_000)
    parser.add_argument("--idle-seconds", type=int, default=30)
    parser.add_argument("--idle-hatch-rate", type=float, default=2000.0)
    parser.add_argument("--idle-wait", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true", help="5 s throughput, 10 s idle runs")
    parser.add_argument("--target", choices=("auto", "nginx", "asyncio"), default="auto")
    parser.add_argument("--skip-locust", action="store_true")
    parser.add_argument("--skip-idle", action="store_true")
    parser.add_argument(
        "--profile", type=Path, help="profile Gaggle's throughput run (cProfile, slower)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory and logs")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.idle_seconds = 5, 10
    if args.target == "nginx" and not Path("/usr/sbin/nginx").exists():
        parser.error("--target nginx: /usr/sbin/nginx not found (apt-get install nginx)")
    return args


def run(args: argparse.Namespace, workdir: Path) -> None:
    generator_core, target_core = choose_cores()
    connections = max(args.users, 0 if args.skip_idle else args.idle_users) + 1024
    target = start_target(target_core, workdir, connections, args.target != "asyncio")
    try:
        print(
            f"target: {target.kind} at {target.url} on CPU {target_core}; "
            f"generators on CPU {generator_core}; work dir {workdir}"
        )
        busy = Scenario(args.users, 1000.0, args.seconds, 0.0)
        gaggle = measure_gaggle(target, busy, generator_core, workdir, args.profile)
        locust = None
        if not args.skip_locust:
            locust = measure_locust(target, busy, generator_core, workdir)
        report_throughput(gaggle, locust, busy)
        if not args.skip_idle:
            idle = Scenario(
                args.idle_users, args.idle_hatch_rate, args.idle_seconds, args.idle_wait
            )
            report_idle(measure_gaggle(target, idle, generator_core, workdir), idle)
    finally:
        target.stop()


def main() -> int:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="gaggle-bench-"))
    try:
        run(args, workdir)
    except (RuntimeError, TimeoutError) as error:
        print(f"benchmark failed: {error}\n(logs kept in {workdir})", file=sys.stderr)
        return 1
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
