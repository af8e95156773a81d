"""What the per-second readers cost: the whole run's totals read the old way (the hatching phase
re-merged with the totals on every read, ``Metrics.combined``) and the new (``RunTotals``, kept up
to date as deltas arrive), in one invocation on the same data.

A run of ``--names`` request names (default 200) with a wide latency spread (1 ms .. 2 s,
log-uniform, as ``tests/gaggle_mode/test_delta_size.py``) is replayed second by second at
``--rate`` requests a second: a hatching phase, the reset, then the measured phase. Two ledgers
take the same records: ``OldLedger`` (the ledger as it was: totals since the reset only) read the
old way, and the engine's ``Ledger`` read the new way. Each simulated second, the readers a run
has each second read both, timed with ``time.process_time``:

- ``arrival``: what the second's records cost when the first reader of the second drains them
  (the old ledger: merged into its totals; the new: into those and, after the reset, the whole
  run's, the live view's aggregate and -R's feed; on a manager, the write-back of the rows that
  changed, and now their changes too): work per delta, O(what changed), done once whoever reads;
- ``read``: then one read of the whole run's totals with their request rows (what /summary and
  the final report read; the readers below read the rest, ``RunTotals.counts``), and again with
  nothing new. Read every second, the run's rows are kept: each read merges the deltas that
  arrived since the previous one (unread, the rows are let go and the arrival is cheaper still);
- ``live view``: the panel's figures (``FigureSampler``: the aggregate of every request row, the
  errors, the rolling window);
- ``-R``: the report timeline's sample (its per-second differences of every row);
- ``scrape``: a ``/metrics`` scrape (old: every row's histogram folded into the fixed buckets and
  prometheus_client's exposition of every line; new: ``MetricsPage``, the rows kept from a feed
  and the lines of rows that changed written as text).

The same is then done on a manager: ``--workers`` simulated workers each ship a delta of their
share of the second (``to_delta``, serialized) into one ``MergedTally``, read old and new. The bar
(issue metrics-at-scale): one read ≤ 5 ms, and the live view, -R and a scrape each second
together ≤ 1 % of a run's CPU, i.e. ≤ 10 ms a second. Records are made before the clock
starts; what is timed is the arrival and the reading.

Each engine is measured, side by side: the pure-Python one in this process, and the compiled one
(the modules of ``[tool.gaggle] compiled``, built by tools/compiled.py) in a child process that
runs this script with the build first on its ``PYTHONPATH`` and hands its figures back as JSON.

    .venv/bin/python benchmarks/reads.py [--names 200] [--rate 15000] [--seconds 20] [--quick] \
        [--engine pure|compiled|both]
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

# This folder holds gaggle.py, which must not shadow the gaggle package.
HERE = Path(__file__).resolve().parent
TOOLS = HERE.parent / "tools"
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]

from prometheus_client import generate_latest  # noqa: E402
from prometheus_client.core import (  # noqa: E402
    CounterMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import CollectorRegistry  # noqa: E402

from gaggle.distributed.codec import to_delta  # noqa: E402
from gaggle.distributed.merged_tally import MergedTally, Totals  # noqa: E402
from gaggle.metrics import (  # noqa: E402
    Aggregator,
    Ledger,
    Metrics,
    RequestRecord,
    RunTotals,
    Source,
    Stats,
)
from gaggle.report.figures import FigureSampler, LiveInputs, Progress  # noqa: E402
from gaggle.report.timeline import Timeline  # noqa: E402
from gaggle.web.prometheus import GaggleCollector, MetricsPage, cumulative_buckets  # noqa: E402
from gaggle.wire.gaggle_pb2 import Delta  # noqa: E402

READ_BAR_MS = 5.0
SECOND_BAR_MS = 10.0  # 1 % of a CPU second
ENGINES = ("pure", "compiled")
CHILD_DEADLINE = 900.0  # seconds: the default run takes about 40 on a quiet machine

Seconds = list[dict[str, float]]  # each simulated second's readings: (what, CPU ms)
Runs = dict[str, tuple[Seconds, Seconds]]  # by place (standalone, manager): (old, new)


class OldLedger:
    """The ledger before this change: one drain, one merge into the totals since the reset."""

    def __init__(self, aggregator: Aggregator) -> None:
        self._aggregator, self._totals = aggregator, Metrics()

    def metrics(self) -> Metrics:
        delta = self._aggregator.drain()
        if not delta.is_empty():
            self._totals.merge(delta)
        return self._totals

    def reset(self) -> Metrics:
        counted, self._totals = self.metrics(), Metrics()
        return counted


class OldRunSoFar:
    """The live view's reading before ``RunTotals``: aggregated request stats and errors since
    the first user, what the tally counts now plus what the hatch reset set aside."""

    def __init__(
        self, counted: Callable[[], Metrics], set_aside: Callable[[], Metrics | None]
    ) -> None:
        self.counted, self.set_aside = counted, set_aside
        self._aside: tuple[Stats, dict[str, int]] | None = None

    def __call__(self) -> tuple[Stats, dict[str, int]]:
        metrics, aside = self.counted(), self.set_aside()
        stats = metrics.aggregated_requests()
        if aside is None:
            return stats, metrics.errors
        if self._aside is None:
            self._aside = aside.aggregated_requests(), aside.errors
        aside_stats, aside_errors = self._aside
        stats.merge(aside_stats)
        errors = dict(aside_errors)
        for error, count in metrics.errors.items():
            errors[error] = errors.get(error, 0) + count
        return stats, errors


class OldMergedTally:
    """The manager's tally before this change: the slots written back, nothing more."""

    def __init__(self) -> None:
        self._totals = Totals()

    def merge(self, delta: Delta) -> None:
        self._totals.merge(delta)

    def metrics(self) -> Metrics:
        return self._totals.metrics()

    def reset(self) -> Metrics:
        counted, self._totals = self._totals.metrics(), Totals()
        return counted


class OldRequestFamilies:
    """/metrics' request families before this change: every row's fine histogram folded into
    the fixed buckets on each scrape, and prometheus_client's exposition of every line."""

    def __init__(self, read: Callable[[], Metrics]) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("gaggle_requests", "", labels=["method", "name", "status"])
        failures = CounterMetricFamily("gaggle_request_failures", "", labels=["method", "name"])
        latency = HistogramMetricFamily("gaggle_response_time_seconds", "",
                                        labels=["method", "name"])  # fmt: skip
        for (method, name), stats in sorted(self.read().requests.items()):
            for status, count in sorted(stats.status_codes.items()):
                requests.add_metric([method, name, str(status)], count)
            failures.add_metric([method, name], stats.fail_count)
            latency.add_metric([method, name], cumulative_buckets(stats), stats.sum_us / 1e6)
        yield from (requests, failures, latency)


def records(rng: random.Random, names: list[str], count: int) -> list[RequestRecord]:
    out = []
    for _ in range(count):
        name = rng.choice(names)
        elapsed_us = int(math.exp(rng.uniform(math.log(1_000), math.log(2_000_000))))
        status = rng.choices((200, 302, 404, 500), (94, 3, 2, 1))[0]
        error = "" if status < 400 else f"status {status}"
        fields = (elapsed_us, status, status < 400, False, 0, error)
        out.append(RequestRecord(0, "GET", name, name, name, False, *fields))
    return out


def new_so_far(totals: RunTotals) -> Callable[[], tuple[object, dict[str, int]]]:
    """The live view's reading as the session binds it now."""
    return lambda: (totals.requests(), totals.counts().errors)


def timed(call: Callable[[], object]) -> float:
    """CPU milliseconds of one call."""
    started = time.process_time()
    call()
    return (time.process_time() - started) * 1000


class Readers:
    """The readers a run has each second, bound to one way of reading the totals."""

    def __init__(
        self,
        arrive: Callable[[], object],
        read: Callable[[], Metrics],
        so_far: Callable[[], tuple[object, dict[str, int]]],
        follow: Callable[[], Callable[[], list[Metrics]]] | None,
        requests: Callable[[], Stats] | None = None,
        counts: Callable[[], Metrics] | None = None,
    ) -> None:
        self.arrive, self.read = arrive, read
        source = Source(
            metrics=read, users=lambda: 50, follow=follow, requests=requests, counts=counts
        )
        self.timeline = Timeline(source)
        inputs = LiveInputs(
            progress=lambda: Progress(1.0, 60.0),
            users_running=lambda: 50,
            users_target=lambda: 50,
            run_so_far=so_far,  # type: ignore[arg-type]
            load_seconds=lambda: 1.0,
        )
        self.live = FigureSampler(inputs)
        if follow is None:  # the page as it was: prometheus_client writes every row's families
            registry = CollectorRegistry()
            registry.register(OldRequestFamilies(read))
            registry.register(GaggleCollector(Source(metrics=read, users=lambda: 50)))
            self.scrape: Callable[[], bytes] = lambda: generate_latest(registry)
        else:
            self.scrape = MetricsPage(source).render

    def second(self) -> dict[str, float]:
        """One second's readings: (what, CPU ms)."""
        return {
            "arrival (per second)": timed(self.arrive),
            "read": timed(self.read),
            "read again": timed(self.read),
            "live view": timed(self.live.sample),
            "-R": timed(self.timeline.sample),
            "scrape": timed(self.scrape),
        }


def standalone(args: argparse.Namespace) -> tuple[Seconds, Seconds]:
    rng = random.Random(24)
    names = [f"/api/resource/{i}" for i in range(args.names)]
    old_agg, new_agg = Aggregator(), Aggregator()
    old_ledger, new_ledger = OldLedger(old_agg), Ledger(new_agg)
    hatch: list[Metrics] = []
    totals = new_ledger.run_totals()

    def old_read() -> Metrics:
        return Metrics.combined(*hatch, old_ledger.metrics())

    def new_read() -> Metrics:
        new_ledger.metrics()  # as the session reads: the tally first, then the whole run's
        return totals.metrics()

    so_far = OldRunSoFar(old_ledger.metrics, lambda: hatch[0] if hatch else None)
    old = Readers(old_ledger.metrics, old_read, so_far, None)
    new = Readers(
        new_ledger.metrics,
        new_read,
        new_so_far(totals),
        totals.follow,
        totals.requests,
        totals.counts,
    )
    for _ in range(args.history):  # the run so far: the hatching phase, then the reset
        for record in records(rng, names, args.rate):
            old_agg.record_request(record)
            new_agg.record_request(record)
    hatch.append(old_ledger.reset())
    new_ledger.reset()
    old.second(), new.second()  # the first readings take the whole history: not timed
    old_seconds, new_seconds = [], []
    for _ in range(args.seconds):
        for record in records(rng, names, args.rate):
            old_agg.record_request(record)
            new_agg.record_request(record)
        old_seconds.append(old.second())
        new_seconds.append(new.second())
    if old_read() != new_read():
        raise SystemExit("the new read differs from the old one")
    return old_seconds, new_seconds


def gaggle(args: argparse.Namespace) -> tuple[Seconds, Seconds]:
    rng = random.Random(42)
    names = [f"/api/resource/{i}" for i in range(args.names)]
    aggregators = [Aggregator() for _ in range(args.workers)]
    workers = [Ledger(aggregator, shipping=True) for aggregator in aggregators]
    merged, old_merged, sequence = MergedTally(), OldMergedTally(), 0
    hatch: list[Metrics] = []
    totals = merged.run_totals()

    def ship() -> None:
        nonlocal sequence
        share = args.rate // args.workers
        for aggregator, ledger in zip(aggregators, workers, strict=True):
            for record in records(rng, names, share):
                aggregator.record_request(record)
            sequence += 1
            wire = to_delta(ledger.take_delta(), sequence, users_running=5, final=False)
            received = Delta.FromString(wire.SerializeToString())
            merged.merge(received)
            old_merged.merge(received)

    def old_read() -> Metrics:
        return Metrics.combined(*hatch, old_merged.metrics())

    def new_read() -> Metrics:
        merged.metrics()
        return totals.metrics()

    so_far = OldRunSoFar(old_merged.metrics, lambda: hatch[0] if hatch else None)
    old = Readers(old_merged.metrics, old_read, so_far, None)
    new = Readers(
        merged.metrics, new_read, new_so_far(totals), totals.follow, totals.requests, totals.counts
    )
    for _ in range(args.history):
        ship()
        old_merged.metrics(), merged.metrics()  # read each second: a second's write-back
    hatch.append(old_merged.reset())
    merged.reset()
    old.second(), new.second()  # the first readings take the whole history: not timed
    old_seconds, new_seconds = [], []
    for _ in range(args.seconds):
        ship()
        old_seconds.append(old.second())
        new_seconds.append(new.second())
    if old_read() != new_read():
        raise SystemExit("the new read differs from the old one")
    return old_seconds, new_seconds


def show(title: str, runs: dict[str, tuple[Seconds, Seconds]]) -> bool:
    """One place's table: for each engine, the old and new readings' median and worst."""
    engines = list(runs)
    count = len(next(iter(runs.values()))[0])
    print(f"\n{title}  (CPU ms; median and worst of {count} seconds)")
    print(f"  {'':<38}" + "".join(f"{engine:^40}" for engine in engines))
    heads = f"   {'old median':>11}{'worst':>7}{'new median':>12}{'worst':>7}"
    print(f"  {'':<38}" + heads * len(engines))

    def row(label: str, values: list[tuple[list[float], list[float]]]) -> None:
        cells = "".join(
            f"   {statistics.median(a):>11.2f}{max(a):>7.2f}{statistics.median(b):>12.2f}"
            f"{max(b):>7.2f}"
            for a, b in values
        )
        print(f"  {label:<38}{cells}")

    def per_second(seconds: Seconds, readers: tuple[str, ...], base: float) -> list[float]:
        return [sum(s[w] for w in readers) + s["arrival (per second)"] - base for s in seconds]

    old_first = next(iter(runs.values()))[0]
    for what in old_first[0]:
        row(what, [([s[what] for s in old], [s[what] for s in new]) for old, new in runs.values()])
    # what the readers cost a second: theirs, and what the arrival does for them beyond the old
    bases = [statistics.median(s["arrival (per second)"] for s in old) for old, _ in runs.values()]
    views, scrape = ("live view", "-R"), ("live view", "-R", "scrape")
    pairs = list(zip(runs.values(), bases, strict=True))
    row(
        "live view + -R (+ arrival beyond old)",
        [(per_second(old, views, b), per_second(new, views, b)) for (old, new), b in pairs],
    )
    row(
        "... + scrape",
        [(per_second(old, scrape, b), per_second(new, scrape, b)) for (old, new), b in pairs],
    )
    ok = True
    for engine, ((_, new), base) in zip(engines, pairs, strict=True):
        worst_read = max(s["read"] for s in new)
        share = statistics.median(per_second(new, scrape, base)) / 10  # % of one CPU second
        read_ok, second_ok = worst_read <= READ_BAR_MS, share <= SECOND_BAR_MS / 10
        print(
            f"  {engine}: one read, worst {worst_read:.2f} ms (bar ≤ {READ_BAR_MS:g} ms): "
            f"{'PASS' if read_ok else 'FAIL'};  live view + -R + scrape {share:.2f} % of a CPU "
            f"second (bar ≤ 1 %): {'PASS' if second_ok else 'FAIL'}"
        )
        ok = ok and read_ok and second_ok
    return ok


def tools_compiled() -> ModuleType:
    """tools/compiled.py, which builds the compiled engine (tools/ is not a package)."""
    if str(TOOLS) not in sys.path:
        sys.path.append(str(TOOLS))
    import compiled

    return compiled


def engine_text() -> str:
    """Which engine this process imported: how many of the listed modules are extensions."""
    names: list[str] = tools_compiled().compiled_names()
    built = [name for name in names if (importlib.import_module(name).__file__ or "")[-3:] == ".so"]
    return f"{len(built)} of {len(names)} listed modules compiled"


def measure(args: argparse.Namespace) -> Runs:
    return {
        "standalone (Ledger)": standalone(args),
        f"manager ({args.workers} workers, MergedTally)": gaggle(args),
    }


def measure_compiled(args: argparse.Namespace) -> tuple[Runs, str] | None:
    """This script in a child on the compiled engine; None (said why) where it cannot build."""
    try:
        build: Path = tools_compiled().build()
    except RuntimeError as error:
        print(f"compiled engine skipped: {error}", file=sys.stderr)
        return None
    with tempfile.TemporaryDirectory(prefix="gaggle-reads-") as scratch:
        results = Path(scratch) / "runs.json"
        command = [sys.executable, str(Path(__file__).resolve()), "--child-results", str(results)]
        command += [f"--names={args.names}", f"--rate={args.rate}", f"--workers={args.workers}"]
        command += [f"--history={args.history}", f"--seconds={args.seconds}"]
        environment = os.environ | {"PYTHONPATH": str(build)}
        done = subprocess.run(command, env=environment, timeout=CHILD_DEADLINE, check=False)
        if done.returncode != 0:
            raise SystemExit(f"the compiled engine's run failed (exit {done.returncode})")
        measured = json.loads(results.read_text())
    runs = {place: (old, new) for place, (old, new) in measured["runs"].items()}
    return runs, f"{measured['engine']} ({build})"


def main() -> int:
    parser = argparse.ArgumentParser(description="The per-second readers' cost, old and new.")
    parser.add_argument("--names", type=int, default=200)
    parser.add_argument("--rate", type=int, default=15_000, help="requests a second")
    parser.add_argument("--history", type=int, default=40, help="seconds before the reset")
    parser.add_argument("--seconds", type=int, default=20, help="seconds read after it")
    parser.add_argument("--workers", type=int, default=10, help="the manager's")
    parser.add_argument("--quick", action="store_true", help="10 s of history, 5 read")
    parser.add_argument(
        "--engine", choices=(*ENGINES, "both"), default="both", help="pure-Python, compiled"
    )
    parser.add_argument("--child-results", type=Path, help=argparse.SUPPRESS)  # the child's
    args = parser.parse_args()
    if args.quick:
        args.history, args.seconds = 10, 5
    if args.child_results is not None:  # the compiled engine's run: measure, hand back
        measured = {"engine": engine_text(), "runs": measure(args)}
        args.child_results.write_text(json.dumps(measured))
        return 0
    print(
        f"{args.names} names, 1 ms .. 2 s log-uniform, {args.rate:,} requests a second; "
        f"{args.history} s before the reset, {args.seconds} s read after it"
    )
    by_engine: dict[str, Runs] = {}
    if args.engine in ("pure", "both"):
        by_engine["pure"] = measure(args)
        print(f"pure: {engine_text()}")
    if args.engine in ("compiled", "both"):
        compiled_run = measure_compiled(args)
        if compiled_run is None and args.engine == "compiled":
            return 1
        if compiled_run is not None:
            by_engine["compiled"], where = compiled_run
            print(f"compiled: {where}")
    ok = True
    for place in next(iter(by_engine.values())):
        ok = show(place, {engine: runs[place] for engine, runs in by_engine.items()}) and ok
    return 0 if ok else 3


if __name__ == "__main__":
    raise SystemExit(main())
