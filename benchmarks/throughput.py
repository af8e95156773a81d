"""Gaggle's throughput and memory, measured against Locust in the same run on the same machine.

What it measures, in one invocation (about 1.5 minutes by default, ``--quick`` for 5 s runs):

1. **Throughput per core.** A fast local target (Debian's nginx when installed, else a small
   asyncio server) runs pinned to one CPU; each load generator runs pinned to another CPU with
   50 users, no wait time, for 15 s. Gaggle (aiohttp on uvloop) and Locust's FastHttpUser
   (geventhttpclient) take turns against the same target, two rounds with the order swapped.
   Each tool's rate is its own final count of requests over its own run duration (Gaggle's
   ``RunResult``; Locust's totals once its users stopped — its stats CSV lags by up to a
   second), and the target's count is shown beside it as a check. A run with more than 1%
   failed requests is reported as invalid.
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
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from target import NGINX, Target, pinned_to, start_target

HERE = Path(__file__).resolve().parent
GAGGLE, LOCUST = "gaggle (aiohttp)", "locust FastHttpUser"
THROUGHPUT_BAR = 1.2  # Gaggle req/s ÷ Locust FastHttpUser req/s, per core
IDLE_RSS_BAR_MB = 250.0  # peak RSS of 10k idle users
MAX_FAILURE_SHARE = 0.01  # more failed requests than this and a run proves nothing
# locustfile.py writes Locust's final totals to this file (not imported here: importing locust
# would monkey-patch this process with gevent).
LOCUST_TOTALS_VARIABLE = "GAGGLE_BENCH_LOCUST_TOTALS"
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

    @property
    def valid(self) -> bool:
        """A run with more than 1% failed requests measured errors, not throughput."""
        return self.requests > 0 and self.failures <= MAX_FAILURE_SHARE * self.requests


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


def run_pinned(
    argv: list[str], core: int, timeout: float, log: Path, env: dict[str, str] | None = None
) -> tuple[int, int]:
    """Run ``argv`` on ``core`` until it exits or ``timeout`` passes; (exit code, peak KiB)."""
    with log.open("wb") as out:
        child = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=pinned_to(core),
            env=None if env is None else {**os.environ, **env},
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
    target: Target,
    scenario: Scenario,
    core: int,
    workdir: Path,
    tag: str,
    profile: Path | None = None,
) -> Measurement:
    out, log = workdir / f"gaggle-{tag}.json", workdir / f"gaggle-{tag}.log"
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
        tool=GAGGLE,
        requests=result["requests"],
        failures=result["failures"],
        duration=result["duration"],
        peak_rss_kb=max(peak, result["peak_rss_kb"]),
        served=difference(before, target.served()),
        note=f"errors: {errors}" if errors else "",
    )


def measure_locust(
    target: Target, scenario: Scenario, core: int, workdir: Path, tag: str
) -> Measurement:
    out, log = workdir / f"locust-{tag}.json", workdir / f"locust-{tag}.log"
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
    ]
    before = target.served()
    env = {LOCUST_TOTALS_VARIABLE: str(out)}
    code, peak = run_pinned(argv, core, scenario.seconds + GRACE, log, env)
    if code not in (0, 1) or not out.exists():  # 1: the run had failed requests
        raise RuntimeError(f"locust exited with {code}:\n{tail(log)}")
    totals = json.loads(out.read_text())
    started, last = totals["start_time"], totals["last_request_timestamp"] or 0.0
    return Measurement(
        tool=LOCUST,
        requests=totals["requests"],
        failures=totals["failures"],
        duration=max(0.0, last - started),  # Locust's own: start of spawning to last request
        peak_rss_kb=peak,
        served=difference(before, target.served()),
    )


def difference(before: int | None, after: int | None) -> int | None:
    return after - before if before is not None and after is not None else None


# --- printing --------------------------------------------------------------------------------
def verdict(ok: bool, runs: list[Measurement]) -> str:
    if not all(m.valid for m in runs):
        return "INVALID: too many failed requests (see the errors above)"
    return "PASS" if ok else "FAIL"


def pooled(rows: list[Measurement]) -> Measurement:
    """Several runs of one tool as one: their requests over their summed durations."""
    return Measurement(
        tool=rows[0].tool,
        requests=sum(m.requests for m in rows),
        failures=sum(m.failures for m in rows),
        duration=sum(m.duration for m in rows),
        peak_rss_kb=max(m.peak_rss_kb for m in rows),
    )


def print_rows(rows: list[tuple[str, Measurement]]) -> None:
    print(
        f"  {'run':<6}{'tool':<22}{'requests':>10}{'fails':>7}{'seconds':>9}{'req/s':>9}"
        f"{'peak RSS MB':>13}{'target saw':>12}"
    )
    for label, m in rows:
        served = "-" if m.served is None else str(m.served)
        print(
            f"  {label:<6}{m.tool:<22}{m.requests:>10}{m.failures:>7}{m.duration:>9.2f}"
            f"{m.rate:>9.0f}{m.rss_mb:>13.1f}{served:>12}"
        )
        if m.note:
            print(f"        {m.note}")


def report_throughput(rounds: list[list[Measurement]], scenario: Scenario) -> bool:
    print(
        f"\nThroughput: {scenario.users} users, no wait, {scenario.seconds} s per run, "
        f"{len(rounds)} round(s), one generator core"
    )
    runs = [m for round_ in rounds for m in round_]
    print_rows([(str(i + 1), m) for i, round_ in enumerate(rounds) for m in round_])
    gaggle = pooled([m for m in runs if m.tool == GAGGLE])
    locusts = [m for m in runs if m.tool == LOCUST]
    if not locusts or pooled(locusts).rate <= 0:
        return all(m.valid for m in runs)
    locust = pooled(locusts)
    by_round = [rate_of(round_, GAGGLE) / rate_of(round_, LOCUST) for round_ in rounds]
    ratio = gaggle.rate / locust.rate
    ok = ratio >= THROUGHPUT_BAR and all(m.valid for m in runs)
    print(f"  gaggle/locust req/s by round: {', '.join(f'{r:.2f}×' for r in by_round)}")
    print(
        f"  all rounds: gaggle {gaggle.rate:.0f} req/s, locust {locust.rate:.0f} req/s: "
        f"{ratio:.2f}×   bar ≥ {THROUGHPUT_BAR}×  {verdict(ok, runs)}"
    )
    print(
        f"  peak RSS: gaggle {gaggle.rss_mb:.1f} MB, locust {locust.rss_mb:.1f} MB "
        f"({gaggle.rss_mb / locust.rss_mb:.2f}×)"
    )
    return ok


def rate_of(round_: list[Measurement], tool: str) -> float:
    return next(m.rate for m in round_ if m.tool == tool)


def report_idle(idle: Measurement, scenario: Scenario) -> bool:
    print(
        f"\nIdle users: {scenario.users} users, one GET then constant({scenario.wait:g}), "
        f"hatch {scenario.hatch_rate:g}/s, {scenario.seconds} s"
    )
    print_rows([("idle", idle)])
    per_user_kb = idle.peak_rss_kb / scenario.users
    ok = idle.rss_mb <= IDLE_RSS_BAR_MB and idle.valid
    print(
        f"  peak RSS {idle.rss_mb:.0f} MB ({per_user_kb:.1f} KiB per user)"
        f"   bar ≤ {IDLE_RSS_BAR_MB:.0f} MB  {verdict(ok, [idle])}"
    )
    return ok


# --- main ------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Gaggle vs Locust: req/s per core and memory.")
    parser.add_argument("--seconds", type=int, help="each throughput run (default 15, quick 5)")
    parser.add_argument("--users", type=int, default=50, help="users in the throughput runs")
    parser.add_argument("--rounds", type=int, default=2, help="throughput runs per tool (0: none)")
    parser.add_argument("--idle-users", type=int, default=10_000)
    parser.add_argument("--idle-seconds", type=int, help="the idle run (default 30, quick 10)")
    parser.add_argument("--idle-hatch-rate", type=float, default=2000.0)
    parser.add_argument("--idle-wait", type=float, default=10.0, help="pause after each GET")
    parser.add_argument("--quick", action="store_true", help="5 s throughput, 10 s idle runs")
    parser.add_argument("--target", choices=("auto", "nginx", "asyncio"), default="auto")
    parser.add_argument("--skip-locust", action="store_true")
    parser.add_argument("--skip-idle", action="store_true")
    parser.add_argument(
        "--profile", type=Path, help="cProfile round 1's Gaggle run into this file (slows it)"
    )
    parser.add_argument("--check", action="store_true", help="exit with 3 when a bar is missed")
    parser.add_argument("--keep", action="store_true", help="keep the work directory and logs")
    args = parser.parse_args(argv)
    if args.seconds is None:
        args.seconds = 5 if args.quick else 15
    if args.idle_seconds is None:
        args.idle_seconds = 10 if args.quick else 30
    if min(args.seconds, args.users, args.idle_seconds, args.idle_users) < 1 or args.rounds < 0:
        parser.error("durations and user counts must be ≥ 1, rounds ≥ 0")
    if args.target == "nginx" and not Path(NGINX).exists():
        parser.error(f"--target nginx: {NGINX} not found (apt-get install nginx)")
    return args


def throughput_rounds(args: argparse.Namespace, target: Target, core: int, workdir: Path) -> bool:
    """Gaggle and Locust in turn, the order swapped each round so that drift hits both."""
    busy = Scenario(args.users, 1000.0, args.seconds, 0.0)
    rounds: list[list[Measurement]] = []
    for index in range(args.rounds):
        tag, profile = str(index + 1), args.profile if index == 0 else None
        runs = [partial(measure_gaggle, target, busy, core, workdir, tag, profile)]
        if not args.skip_locust:
            runs.append(partial(measure_locust, target, busy, core, workdir, tag))
        if index % 2:
            runs.reverse()
        rounds.append([measure() for measure in runs])
    return report_throughput(rounds, busy) if rounds else True


def run(args: argparse.Namespace, workdir: Path) -> bool:
    """Start the target, run every scenario, print the tables; False when a bar is missed."""
    generator_core, target_core = choose_cores()
    connections = max(args.users, 0 if args.skip_idle else args.idle_users) + 1024
    target = start_target(target_core, workdir, connections, args.target != "asyncio")
    try:
        print(
            f"target: {target.kind} at {target.url} on CPU {target_core}; "
            f"generators on CPU {generator_core}; work dir {workdir}"
        )
        ok = throughput_rounds(args, target, generator_core, workdir)
        if not args.skip_idle:
            idle = Scenario(
                args.idle_users, args.idle_hatch_rate, args.idle_seconds, args.idle_wait
            )
            measured = measure_gaggle(target, idle, generator_core, workdir, "idle")
            ok = report_idle(measured, idle) and ok
    finally:
        target.stop()
    return ok


def main() -> int:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="gaggle-bench-"))
    try:
        ok = run(args, workdir)
    except (RuntimeError, TimeoutError) as error:
        print(f"benchmark failed: {error}\n(logs kept in {workdir})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted (logs kept in {workdir})", file=sys.stderr)
        return 130
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 3 if args.check and not ok else 0


if __name__ == "__main__":
    raise SystemExit(main())
