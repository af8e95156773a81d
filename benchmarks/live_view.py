"""What the live view costs: Gaggle's throughput on a terminal with the panel on and with
``--no-live``, measured in the same invocation on the same pinned core.

Each run is ``gaggle_child.py --live-view on|off`` (the engine ``gaggle run`` drives, printing as
it prints) with its stdout and stderr on a pseudo-terminal, so the "on" run really draws the panel
once a second and the "off" run differs by that alone; the benchmark reads the pty all along, as
a terminal would. The target (Debian's nginx when installed, else the asyncio fallback) runs
pinned to one CPU, the generator to another, 50 users with no wait, 15 s per run; the two modes
take turns for a few rounds, the order swapped each round, and each mode's rate is its requests
over its durations, pooled. The cost is ``1 - on/off``; the bar is ≤ 1 %. A check that the panel
was drawn in the "on" runs, and never in the "off" ones, guards the comparison.

Load only ever goes to 127.0.0.1, and every child has a deadline.

    .venv/bin/python benchmarks/live_view.py [--seconds 15] [--rounds 3] [--users 50] [--quick]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import termios
import time
from dataclasses import dataclass
from pathlib import Path

from target import pinned_to, start_target
from throughput import GRACE, MAX_FAILURE_SHARE, choose_cores

HERE = Path(__file__).resolve().parent
COST_BAR = 0.01  # the view may cost at most 1 % of the throughput
PANEL_TITLE = "gaggle · ".encode()
COLUMNS, ROWS = 100, 30


def run_on_pty(argv: list[str], core: int, timeout: float) -> tuple[int, bytes]:
    """Run ``argv`` pinned to ``core`` on a COLUMNS × ROWS pty; (exit code, what it wrote)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    child = subprocess.Popen(
        argv,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**env, "TERM": "xterm-256color"},
        preexec_fn=pinned_to(core),
        start_new_session=True,
    )
    os.close(slave)
    output, deadline = bytearray(), time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{argv[:3]} still running after {timeout:.0f} s")
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the pty
                break
            if not chunk:
                break
            output += chunk
        return child.wait(timeout=10), bytes(output)
    finally:
        os.close(master)
        if child.poll() is None:
            child.kill()  # our own child, by its handle
            child.wait(timeout=10)


@dataclass
class Run:
    mode: str  # "on" or "off"
    requests: int
    failures: int
    seconds: float  # the run's duration (RunResult)
    cpu_seconds: float  # the generator's CPU time over the run
    view_cpu_seconds: float  # of which the view's reading and drawing ("on" only)
    drawn: int  # panel frames seen on the pty

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def per_cpu_second(self) -> float:
        """Requests per CPU second of the generator: what another process that takes the
        generator's core away for a while (a shared machine) does not change."""
        return self.requests / self.cpu_seconds if self.cpu_seconds > 0 else 0.0

    @property
    def view_share(self) -> float:
        return self.view_cpu_seconds / self.cpu_seconds if self.cpu_seconds > 0 else 0.0


def measure(
    url: str, mode: str, args: argparse.Namespace, core: int, workdir: Path, tag: str
) -> Run:
    out = workdir / f"live-{mode}-{tag}.json"
    argv = [
        sys.executable,
        "-P",  # benchmarks/gaggle.py must not shadow the gaggle package
        str(HERE / "gaggle_child.py"),
        f"--host={url}",
        f"--users={args.users}",
        f"--seconds={args.seconds}",
        f"--out={out}",
        f"--live-view={mode}",
    ]
    code, output = run_on_pty(argv, core, args.seconds + GRACE)
    (workdir / f"live-{mode}-{tag}.log").write_bytes(output)
    if code != 0 or not out.exists():
        raise RuntimeError(f"gaggle exited with {code}:\n{output[-2000:].decode(errors='replace')}")
    drawn = output.count(PANEL_TITLE)
    if (mode == "on") != (drawn > 0):
        raise RuntimeError(f"live view {mode} but the panel was drawn {drawn} times")
    result = json.loads(out.read_text())
    return Run(
        mode,
        result["requests"],
        result["failures"],
        result["duration"],
        result["cpu_seconds"],
        result["view_cpu_seconds"],
        drawn,
    )


def pooled(runs: list[Run], mode: str) -> tuple[float, float]:
    """(requests per second, requests per CPU second) of a mode's runs together."""
    chosen = [run for run in runs if run.mode == mode]
    requests = sum(run.requests for run in chosen)
    seconds = sum(run.seconds for run in chosen)
    cpu = sum(run.cpu_seconds for run in chosen)
    return requests / seconds if seconds else 0.0, requests / cpu if cpu else 0.0


def report(runs: list[Run]) -> bool:
    (on, on_cpu), (off, off_cpu) = pooled(runs, "on"), pooled(runs, "off")
    pairs = list(zip(runs[::2], runs[1::2], strict=False))
    by_round = [a.rate / b.rate if a.mode == "on" else b.rate / a.rate for a, b in pairs]
    valid = all(run.requests and run.failures <= MAX_FAILURE_SHARE * run.requests for run in runs)
    wall_cost = 1 - on / off if off else 0.0
    cpu_cost = 1 - on_cpu / off_cpu if off_cpu else 0.0
    view = max((run.view_share for run in runs if run.mode == "on"), default=0.0)
    ok = valid and cpu_cost <= COST_BAR and view <= COST_BAR

    def judged(cost: float) -> str:
        return ("PASS" if cost <= COST_BAR else "FAIL") if valid else "INVALID (failed requests)"

    print(
        f"  req/s          on/off {on / off if off else 0:.4f} ({on:.0f} vs {off:.0f}; by round "
        f"{', '.join(f'{r:.3f}' for r in by_round)}): {100 * wall_cost:+.2f} % (wall clock: "
        "shows the machine's noise too)"
    )
    print(
        f"  req/CPU second on/off {on_cpu / off_cpu if off_cpu else 0:.4f} ({on_cpu:.0f} vs "
        f"{off_cpu:.0f}): the view costs {100 * cpu_cost:+.2f} %   bar ≤ {100 * COST_BAR:.0f} %  "
        f"{judged(cpu_cost)}"
    )
    print(
        f"  the view's own reading and drawing: at most {100 * view:.3f} % of a run's CPU   "
        f"bar ≤ {100 * COST_BAR:.0f} %  {judged(view)}"
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description="The live view's cost in throughput.")
    parser.add_argument("--seconds", type=int, help="each run (default 15, quick 5)")
    parser.add_argument("--rounds", type=int, default=4, help="runs per mode")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="5 s runs, 2 rounds")
    parser.add_argument("--check", action="store_true", help="exit 3 when the bar is missed")
    args = parser.parse_args()
    if args.seconds is None:
        args.seconds = 5 if args.quick else 15
    if args.quick:
        args.rounds = min(args.rounds, 2)
    generator_core, target_core = choose_cores()
    workdir = Path(tempfile.mkdtemp(prefix="gaggle-live-bench-"))
    target = start_target(target_core, workdir, args.users + 1024)
    runs: list[Run] = []
    try:
        print(
            f"target: {target.kind} at {target.url} on CPU {target_core}; generator on CPU "
            f"{generator_core}; {args.users} users, no wait, {args.seconds} s per run, "
            f"{args.rounds} round(s), on a {COLUMNS}×{ROWS} pty; load average "
            f"{os.getloadavg()[0]:.2f}"
        )
        for index in range(args.rounds):
            for mode in ("on", "off") if index % 2 == 0 else ("off", "on"):
                run = measure(target.url, mode, args, generator_core, workdir, str(index + 1))
                runs.append(run)
                drawn = f"  panel drawn {run.drawn}×, {100 * run.view_share:.3f} % of the CPU"
                print(
                    f"  round {index + 1}  view {mode:<4}{run.requests:>9} requests "
                    f"{run.failures:>4} fails {run.seconds:>6.2f} s {run.rate:>7.0f} req/s "
                    f"{run.per_cpu_second:>7.0f} req/CPU s{drawn if run.drawn else ''}"
                )
    except (RuntimeError, TimeoutError) as error:
        print(f"benchmark failed: {error}\n(logs kept in {workdir})", file=sys.stderr)
        return 1
    finally:
        target.stop()
    ok = report(runs)
    shutil.rmtree(workdir, ignore_errors=True)
    return 3 if args.check and not ok else 0


if __name__ == "__main__":
    raise SystemExit(main())
