"""The open model's ceiling: the highest arrival rate one core sustains, Gaggle beside k6.

nginx (``target.py``) runs pinned to one CPU; each load generator runs pinned to another — Gaggle
as ``gaggle run --arrival-rate R`` (one GET per iteration, default client, uvloop), k6 with its
``constant-arrival-rate`` executor under ``GOMAXPROCS=1`` via ``taskset`` — for a fixed time
per trial. A rate is *sustained* when no arrival was dropped and the target served at least
``SUSTAINED`` of the arrivals the schedule held, within the trial's time plus a second. The
search doubles the rate until a trial fails, then bisects to ``PRECISION``. Both get the same
pool bound (``--max-users`` / ``maxVUs``); k6 pre-allocates all of it (``preAllocatedVUs``, as
its docs advise: a VU made mid-test costs a JS runtime and drops arrivals meanwhile), Gaggle
grows its pool on demand.

Then Gaggle's accuracy: at 100, 500, 1000 and 2000 arrivals/s, the iterations started over the
run's own duration (from its start until every iteration ended) against the target, and the
schedule lag p99.

Load only ever goes to 127.0.0.1, and every child process has a deadline.

    .venv/bin/python benchmarks/open_model.py [--seconds 10] [--quick] [--k6 PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from target import Target, pinned_to, start_target

ROOT = Path(__file__).resolve().parent.parent
SUSTAINED = 0.98  # served ÷ scheduled at or above this, and no drops
PRECISION = 0.05  # bisect until the bracket is this narrow (relative)
POOL = 1000  # --max-users and k6's maxVUs
GRACE = 60.0  # seconds a child may take beyond its trial
TARGET_CORE, LOAD_CORE = 0, 1
ACCURACY_RATES = (100, 500, 1000, 2000)
MIN_RATE = 50.0

GAGGLE_TEST = """
from gaggle import TaskSet, task

class Arrival(TaskSet):
    @task
    async def index(self) -> None:
        await self.get("/")
"""

K6_SCRIPT = """
import http from 'k6/http';
export const options = {
  discardResponseBodies: true,
  scenarios: {
    open: {
      executor: 'constant-arrival-rate', rate: __RATE__, timeUnit: '1s',
      duration: '__SECONDS__s', preAllocatedVUs: __PRE__, maxVUs: __POOL__,
    },
  },
};
export default function () { http.get('__URL__/'); }
export function handleSummary(data) { return { '__OUT__': JSON.stringify(data) }; }
"""


@dataclass
class Trial:
    tool: str
    rate: float
    scheduled: int
    started: int
    dropped: int
    served: int
    duration: float
    lag_p99_ms: float | None = None

    @property
    def sustained(self) -> bool:
        return self.dropped == 0 and self.served >= SUSTAINED * self.scheduled

    @property
    def achieved(self) -> float:
        return self.started / self.duration if self.duration > 0 else 0.0


def served_during(target: Target, run: Callable[[], Trial]) -> Trial:
    before = target.served() or 0
    trial = run()
    trial.served = (target.served() or 0) - before
    return trial


def gaggle_trial(target: Target, work: Path, rate: float, seconds: float) -> Trial:
    test = work / "arrival.py"
    test.write_text(GAGGLE_TEST)
    report = work / "gaggle.json"
    command = [
        sys.executable, "-m", "gaggle", "run", str(test), "--host", target.url,
        "--arrival-rate", f"{rate:g}", "-t", f"{seconds:g}", "--max-users", str(POOL),
        "--only-summary", "--no-live", "-R", str(report),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "worker")}
    subprocess.run(
        command, check=True, capture_output=True, timeout=seconds + GRACE,
        preexec_fn=pinned_to(LOAD_CORE), env=env, cwd=work,
    )  # fmt: skip
    data = json.loads(report.read_text())
    schedule = data["schedule"]
    return Trial(
        "gaggle", rate, schedule["scheduled"], schedule["started"], schedule["dropped"], 0,
        data["run"]["duration"], schedule["lag_p99_ms"],
    )  # fmt: skip


def k6_trial(k6: str, target: Target, work: Path, rate: float, seconds: float) -> Trial:
    out = work / "k6.json"
    script = work / "open.js"
    replace = {
        "__RATE__": f"{int(rate)}", "__SECONDS__": f"{int(seconds)}", "__POOL__": str(POOL),
        "__PRE__": str(POOL), "__URL__": target.url,
        "__OUT__": str(out),
    }  # fmt: skip
    text = K6_SCRIPT
    for key, value in replace.items():
        text = text.replace(key, value)
    script.write_text(text)
    env = {**os.environ, "GOMAXPROCS": "1", "K6_NO_USAGE_REPORT": "true"}
    subprocess.run(
        ["taskset", "-c", str(LOAD_CORE), k6, "run", "--quiet", "--no-color", str(script)],
        check=True, capture_output=True, timeout=seconds + GRACE, env=env, cwd=work,
    )  # fmt: skip
    summary = json.loads(out.read_text())
    metrics = summary["metrics"]

    def count(name: str) -> int:
        return int(metrics.get(name, {}).get("values", {}).get("count", 0))

    started, dropped = count("iterations"), count("dropped_iterations")
    duration = float(summary["state"]["testRunDurationMs"]) / 1000
    return Trial("k6", rate, started + dropped, started, dropped, 0, duration)


def ceiling(trial: Callable[[float], Trial], start: float, label: str) -> float:
    """The highest sustained rate: double (or halve) from ``start`` until the outcome flips,
    then bisect; 0 when not even ``MIN_RATE`` is sustained."""

    def sustained(rate: float) -> bool:
        result = trial(rate)
        report(label, result)
        return result.sustained

    good, bad = (start, 0.0) if sustained(start) else (0.0, start)
    while bad == 0.0:
        if sustained(good * 2):
            good *= 2
        else:
            bad = good * 2
    while good == 0.0 and bad / 2 >= MIN_RATE:
        if sustained(bad / 2):
            good = bad / 2
        else:
            bad /= 2
    while good and (bad - good) / good > PRECISION:
        rate = round((good + bad) / 2)
        good, bad = (rate, bad) if sustained(rate) else (good, rate)
    return good


def report(label: str, trial: Trial) -> None:
    verdict = "sustained" if trial.sustained else "NOT sustained"
    lag = f", lag p99 {trial.lag_p99_ms:.1f} ms" if trial.lag_p99_ms is not None else ""
    print(
        f"  {label:7} {trial.rate:>8,.0f}/s: scheduled {trial.scheduled:,}, started "
        f"{trial.started:,}, dropped {trial.dropped:,}, served {trial.served:,}{lag} — {verdict}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true", help="5 s trials")
    beside = str(Path(sys.executable).parent / "k6")  # where `pip install k6` puts it
    parser.add_argument("--k6", default=shutil.which("k6") or beside)
    args = parser.parse_args()
    seconds = 5.0 if args.quick else args.seconds
    if len(os.sched_getaffinity(0)) < 2:
        print("needs two CPUs: one for the target, one for the load generator")
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        target = start_target(TARGET_CORE, work, connections=4 * POOL)
        try:
            print(f"target: {target.kind} on CPU {TARGET_CORE}; generators on CPU {LOAD_CORE}")
            print(f"\nGaggle accuracy ({seconds:g} s each):")
            for rate in ACCURACY_RATES:
                trial = served_during(target, lambda r=rate: gaggle_trial(target, work, r, seconds))
                error = 100 * (trial.achieved - rate) / rate
                print(
                    f"  {rate:>5}/s: started {trial.started:,} in {trial.duration:.3f} s = "
                    f"{trial.achieved:,.1f}/s ({error:+.2f} %), dropped {trial.dropped}, "
                    f"lag p99 {trial.lag_p99_ms} ms, served {trial.served:,}",
                    flush=True,
                )
            print(f"\nHighest sustained arrival rate on one core ({seconds:g} s trials):")
            gaggle = ceiling(
                lambda r: served_during(target, lambda: gaggle_trial(target, work, r, seconds)),
                1000,
                "gaggle",
            )
            k6_rate, have_k6 = 0.0, Path(args.k6).exists()
            if have_k6:
                k6_rate = ceiling(
                    lambda r: served_during(
                        target, lambda: k6_trial(args.k6, target, work, r, seconds)
                    ),
                    1000,
                    "k6",
                )
            print(f"\nGaggle: {gaggle:,.0f} arrivals/s")
            if not have_k6:
                print(f"k6: not found at {args.k6} (pip install k6)")
            else:
                print(f"k6 constant-arrival-rate: {k6_rate:,.0f} arrivals/s")
                print(f"Gaggle / k6: {gaggle / k6_rate:.2f}" if k6_rate else "Gaggle / k6: -")
        finally:
            target.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
