"""Gaggle mode's two costs: the manager's per-delta CPU, and what ``--processes 2`` buys on 2 cores.

What it measures, in one invocation (about 40 s by default, ``--quick`` for a few seconds):

1. **Manager aggregation cost.** A manager's per-delta work is ``ManagerServicer._merge``: parse
   the ``Delta`` off the wire and fold it into the run's totals (``merged_tally.Totals``: row
   scalars in Python, all of a delta's histogram buckets in one numpy step), plus reading the
   totals back as ``Metrics`` once a second as a busy scrape would. Shown beside the tests'
   pure-Python reference decoder (``tests/support/reference_codec.py``: ``merge_delta``) and the
   two-step path (``from_delta`` then ``Metrics.merge``).
   This simulates a gaggle of 100 workers × 200 request names, each worker sending
   one delta a second: realistic deltas are built with ``to_delta`` from an ``Aggregator`` fed
   ``RequestRecord``s (a few status codes, response times spread log-uniformly over 1 ms–2 s so a
   row holds tens of histogram buckets) and serialized. One "second" of the gaggle is then
   parsing + converting + merging those 100 deltas into one totals object, timed with
   ``time.process_time`` in-process (no sockets), repeated, median reported. CPU ms per wall
   second = % of one core the manager spends aggregating; the goal is < 10%.
2. **End to end, ``--processes 2`` against one process.** An unpinned nginx (or the asyncio
   fallback of ``target.py``) on 127.0.0.1 shares the 2 cores with the generator; ``gaggle run``
   with 50 users and no wait time runs once as one process and once as a manager with two
   workers. Each rate is the total of the "Aggregated" row of the summary's PER REQUEST METRICS
   table over the run time; the ratio shows how much a second worker process buys when the
   target competes for the same CPUs (ideally near 2×, realistically 1.2–1.6× here).

Why: the manager is a single Python process that every worker's deltas funnel into, so its
per-delta cost bounds how large a gaggle can get; and ``--processes`` is only worth having if it
scales on the machine it runs on. Load only ever goes to 127.0.0.1; every child has a deadline.

    .venv/bin/python benchmarks/gaggle.py [--quick] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import math
import pstats
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from target import NGINX, STATUS_PATH, Target, free_port, nginx_command, raise_nofile_limit

# This file is named gaggle.py, so its own folder must leave sys.path before gaggle is imported.
HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]
sys.path.append(str(HERE.parent))  # the repository, for the tests' reference decoder

from gaggle.distributed.codec import to_delta  # noqa: E402
from gaggle.distributed.merged_tally import Totals  # noqa: E402
from gaggle.metrics import Aggregator, Metrics, RequestRecord, TaskRecord  # noqa: E402
from gaggle.wire.gaggle_pb2 import Delta  # noqa: E402
from tests.support.reference_codec import from_delta, merge_delta  # noqa: E402

GAGGLE = HERE.parent / ".venv" / "bin" / "gaggle"
WORKERS, NAMES = 100, 200
MANAGER_BAR = 0.10  # share of one core the manager may spend merging a 100-worker gaggle
STATUSES = ((200, 0.94), (302, 0.03), (404, 0.02), (500, 0.01))
TEST_FILE = '''\
"""One GET of / per task, no wait: the fastest loop Gaggle can run."""

from gaggle import TaskSet, constant, task


class Hammer(TaskSet):
    wait_time = constant(0)

    @task
    async def index(self) -> None:
        await self.get("/")
'''


# --- 1. the manager's cost per delta ----------------------------------------------------------
def worker_delta(seed: int, per_name: int) -> bytes:
    """One worker's serialized one-second delta: ``per_name`` requests for each of NAMES names."""
    rng = random.Random(seed)
    aggregator = Aggregator()
    codes, weights = zip(*STATUSES, strict=True)
    low, high = math.log(1_000), math.log(2_000_000)
    for index in range(NAMES):
        name = f"/api/resource/{index}"
        method = "POST" if index % 5 == 0 else "GET"
        for status in rng.choices(codes, weights, k=per_name):
            elapsed_us = int(math.exp(rng.uniform(low, high)))
            success = status < 400
            aggregator.record_request(
                RequestRecord(0, method, name, name, name, False, elapsed_us, status, success,
                              False, seed)
            )  # fmt: skip
            aggregator.record_task(TaskRecord(0, 0, index % 20, name, elapsed_us, success, seed))
    delta = to_delta(aggregator.drain(), sequence=1, users_running=50, final=False)
    return delta.SerializeToString()


def merge_second(payloads: list[bytes], totals: Metrics) -> None:
    """The pure-Python reference: parse + ``merge_delta`` each of one second's deltas."""
    for payload in payloads:
        merge_delta(totals, Delta.FromString(payload))


def fold_second(payloads: list[bytes], totals: Totals) -> None:
    """What the manager does with one second of the gaggle's deltas, and one read of them."""
    for payload in payloads:
        totals.merge(Delta.FromString(payload))
    totals.metrics()


def cpu_ms(work: Callable[[], object], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        start = time.process_time()
        work()
        times.append((time.process_time() - start) * 1000)
    return times


def manager_cost(quick: bool, profile: bool) -> None:
    per_name, distinct, rounds = (20, 10, 3) if quick else (50, 25, 7)
    started = time.perf_counter()
    unique = [worker_delta(seed, per_name) for seed in range(distinct)]
    payloads = [unique[i % distinct] for i in range(WORKERS)]
    sample = Delta.FromString(payloads[0])
    rows = len(sample.requests.method)
    buckets = len(sample.requests.bucket_counts) / 4 / rows
    print(
        f"built {distinct} distinct deltas in {time.perf_counter() - started:.1f} s: "
        f"{rows} request rows + {len(sample.tasks.task)} task rows, "
        f"{buckets:.0f} buckets per request row on average, "
        f"{statistics.mean(map(len, unique)) / 1024:.0f} KiB per delta"
    )
    totals, folded = Metrics(), Totals()
    merge_second(payloads, totals)  # warm-up: the totals now hold every row, as in a running test
    fold_second(payloads, folded)
    parsed = [Delta.FromString(p) for p in payloads]
    converted = [from_delta(d) for d in parsed]
    parts = {
        "parse (Delta.FromString)": cpu_ms(lambda: [Delta.FromString(p) for p in payloads], rounds),
        "from_delta": cpu_ms(lambda: [from_delta(d) for d in parsed], rounds),
        "Metrics.merge": cpu_ms(lambda: [totals.merge(m) for m in converted], rounds),
        "parse + merge_delta": cpu_ms(lambda: merge_second(payloads, totals), rounds),
        "parse + fold + read (manager)": cpu_ms(lambda: fold_second(payloads, folded), rounds),
    }
    print(f"\nManager, {WORKERS} workers × {NAMES} names at 1 delta/s, median of {rounds} rounds:")
    print(f"  {'step':<26}{'CPU ms/s':>10}{'% of a core':>13}{'µs/delta':>10}")
    for step, times in parts.items():
        ms = statistics.median(times)
        print(f"  {step:<26}{ms:>10.1f}{ms / 10:>12.1f}%{ms * 1000 / WORKERS:>10.0f}")
    share = statistics.median(parts["parse + fold + read (manager)"]) / 1000
    verdict = "meets" if share < MANAGER_BAR else "MISSES"
    print(f"  → the manager spends {share:.1%} of one core; {verdict} the < {MANAGER_BAR:.0%} goal")
    if profile:
        profiler = cProfile.Profile()
        profiler.runcall(fold_second, payloads, folded)
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(8)
        print("\ncProfile of one second's merge, by own time:")
        print("\n".join(line for line in out.getvalue().splitlines()[4:] if line.strip()))


# --- 2. --processes 2 against one process -----------------------------------------------------
def start_unpinned_target(workdir: Path) -> Target:
    """Like ``target.start_target`` but not pinned: the target shares both cores with the load."""
    port = free_port()
    if Path(NGINX).exists():
        kind, argv = "nginx", nginx_command(workdir / "nginx", port, 4096)
    else:
        kind, argv = "asyncio", [sys.executable, str(HERE / "target.py"), "--port", str(port)]
    log = (workdir / "target.log").open("wb")
    process = subprocess.Popen(
        argv, stdout=log, stderr=subprocess.STDOUT, preexec_fn=raise_nofile_limit
    )
    target = Target(kind, f"http://127.0.0.1:{port}", process)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{kind} target exited early; see {workdir / 'target.log'}")
        if target.served() is not None:
            return target
        time.sleep(0.05)
    target.stop()
    raise RuntimeError(f"{kind} target did not answer {STATUS_PATH} within 10 s")


AGGREGATED = re.compile(r"^\s*Aggregated\s+([\d,]+)\s+([\d,]+)", re.MULTILINE)


def aggregated_total(stdout: str) -> tuple[int, int]:
    """(requests, failures) of the first Aggregated row after PER REQUEST METRICS."""
    start = stdout.find("PER REQUEST METRICS")
    match = AGGREGATED.search(stdout, start) if start >= 0 else None
    if match is None:
        raise RuntimeError(f"no Aggregated row in gaggle's output:\n{stdout[-2000:]}")
    return int(match.group(1).replace(",", "")), int(match.group(2).replace(",", ""))


def gaggle_run(test: Path, target: Target, seconds: int, processes: int | None) -> float:
    argv = [str(GAGGLE), "run", str(test), "--host", target.url, "-u", "50", "-r", "1000"]
    argv += ["-t", f"{seconds}s", "--no-reset-metrics", "--only-summary"]
    if processes:
        argv += ["--processes", str(processes)]
    print(f"  $ {' '.join(argv)}", flush=True)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"gaggle exited {done.returncode}:\n{done.stdout[-2000:]}{done.stderr}")
    requests, failures = aggregated_total(done.stdout)
    rate = requests / seconds
    print(f"    {requests:,} requests, {failures:,} failed → {rate:,.0f} req/s")
    return rate


def processes_speedup(quick: bool) -> None:
    seconds = 3 if quick else 10
    with tempfile.TemporaryDirectory(prefix="gaggle-bench-") as tmp:
        workdir = Path(tmp)
        test = workdir / "hammer.py"
        test.write_text(TEST_FILE)
        target = start_unpinned_target(workdir)
        try:
            print(f"\nEnd to end against {target.kind} at {target.url} (unpinned, shared cores):")
            single = gaggle_run(test, target, seconds, None)
            double = gaggle_run(test, target, seconds, 2)
        finally:
            target.stop()
    print(f"\n  {'one process':<22}{single:>10,.0f} req/s")
    print(f"  {'--processes 2':<22}{double:>10,.0f} req/s")
    print(f"  {'ratio':<22}{double / single:>10.2f}×")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller deltas, 3 s runs")
    parser.add_argument("--profile", action="store_true", help="cProfile one second's merge")
    parser.add_argument("--skip-e2e", action="store_true", help="only the manager's cost")
    args = parser.parse_args()
    manager_cost(args.quick, args.profile)
    if not args.skip_e2e:
        processes_speedup(args.quick)


if __name__ == "__main__":
    main()
