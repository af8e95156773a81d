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
from pathlib import Path

from target import pinned_to, start_target
from throughput import GRACE, Measurement, choose_cores

HERE = Path(__file__).resolve().parent
COST_BAR = 0.01  # the view may cost at most 1 % of the throughput
PANEL_TITLE = "gaggle · ".encode()
COLUMNS, ROWS = 100, 30
VIEW_SHARES: list[float] = []  # per "on" run: the view's CPU seconds over the run's


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


def measure(
    url: str, mode: str, args: argparse.Namespace, core: int, workdir: Path, tag: str
) -> Measurement:
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
    share = result["view_cpu_seconds"] / result["cpu_seconds"] if result["cpu_seconds"] else 0
    if mode == "on":
        VIEW_SHARES.append(share)
    note = f"panel drawn {drawn}×, its CPU {100 * share:.3f} % of the run's" if drawn else ""
    return Measurement(
        tool=f"view {mode}",
        requests=result["requests"],
        failures=result["failures"],
        duration=result["duration"],
        peak_rss_kb=result["peak_rss_kb"],
        note=note,
    )


def pooled_rate(runs: list[Measurement]) -> float:
    seconds = sum(m.duration for m in runs)
    return sum(m.requests for m in runs) / seconds if seconds > 0 else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description="The live view's cost in throughput.")
    parser.add_argument("--seconds", type=int, help="each run (default 15, quick 5)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per mode")
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
    runs: list[Measurement] = []
    try:
        print(
            f"target: {target.kind} at {target.url} on CPU {target_core}; generator on CPU "
            f"{generator_core}; {args.users} users, no wait, {args.seconds} s per run, "
            f"{args.rounds} round(s), on a {COLUMNS}×{ROWS} pty"
        )
        for index in range(args.rounds):
            modes = ("on", "off") if index % 2 == 0 else ("off", "on")
            for mode in modes:
                m = measure(target.url, mode, args, generator_core, workdir, str(index + 1))
                runs.append(m)
                print(
                    f"  round {index + 1}  {m.tool:<9}{m.requests:>10} requests"
                    f"{m.failures:>6} fails{m.duration:>8.2f} s{m.rate:>9.0f} req/s  {m.note}"
                )
    except (RuntimeError, TimeoutError) as error:
        print(f"benchmark failed: {error}\n(logs kept in {workdir})", file=sys.stderr)
        return 1
    finally:
        target.stop()
    on = pooled_rate([m for m in runs if m.tool == "view on"])
    off = pooled_rate([m for m in runs if m.tool == "view off"])
    cost = 1 - on / off if off > 0 else 0.0
    by_round = [runs[i].rate / runs[i + 1].rate if runs[i].tool == "view on" else
                runs[i + 1].rate / runs[i].rate for i in range(0, len(runs) - 1, 2)]  # fmt: skip
    valid = all(m.valid for m in runs)
    ok = cost <= COST_BAR and valid
    verdict = "PASS" if ok else "FAIL" if valid else "INVALID: too many failed requests"
    print(
        f"  throughput view on/off: {on / off if off else 0:.4f} ({on:.0f} vs {off:.0f} req/s, "
        f"pooled; by round {', '.join(f'{r:.3f}' for r in by_round)}): the view costs "
        f"{100 * cost:.2f} %   bar ≤ {100 * COST_BAR:.0f} %  {verdict}"
    )
    cpu = max(VIEW_SHARES, default=0.0)
    cpu_ok = cpu <= COST_BAR
    print(
        f"  the view's own CPU time (reading + drawing), at most {100 * cpu:.3f} % of a run's "
        f"CPU   bar ≤ {100 * COST_BAR:.0f} %  {'PASS' if cpu_ok else 'FAIL'}"
    )
    ok = ok and cpu_ok
    shutil.rmtree(workdir, ignore_errors=True)
    return 3 if args.check and not ok else 0


if __name__ == "__main__":
    raise SystemExit(main())
