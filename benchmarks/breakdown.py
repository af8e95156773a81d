"""Where a request's CPU goes: Gaggle's request path in µs of CPU per request, by library and by
layer, for the pure-Python and the compiled (mypyc) engine side by side.

    .venv/bin/python benchmarks/breakdown.py [--seconds 10] [--users 50] \
        [--engine pure|compiled|both] [--keep]

Set-up as in throughput.py: nginx pinned to one CPU, benchmarks/gaggle_child.py (closed-loop
users, GET / without wait) pinned to the other. After a second of load, each engine's run is cut
into windows that do not overlap, so that no profiler inflates another's figure:

1. **total**: the child's CPU time (``/proc/PID/task/*/schedstat``) and user/sys split
   (``/proc/PID/stat``) over the requests nginx counted in the window; no profiler attached.
2. **perf** (``record -F 999 --call-graph dwarf``: libpython, uvloop and libc keep no frame
   pointers, ``-g`` left 88% of the stacks unwound): each sample's library (its innermost
   frame's DSO) and owner: from the innermost frame out, the first of uvloop's
   ``UVStream.write`` (the kernel send: the ``transport.write`` line), libuv's ``uv_run`` (the
   loop's own work: polling, reading sockets, stepping tasks), a compiled engine function (its
   module: mypyc names them after it, ``CPyDef_user___User___request``) or
   ``_PyEval_EvalFrameDefault`` (bytecode; its C callees, the parser's too, go with it).
3. **py-spy** (``record -f raw``; ``--native`` for the compiled engine, whose functions are C
   frames) splits the bytecode share by the innermost Gaggle frame (Python or compiled) or
   benchmark frame of its samples that perf's rule gives to bytecode. It runs on the child's
   CPU: from the other one, its samples gathered at the child's system calls.

A share times the total is µs per request. Load only goes to 127.0.0.1; every child has a
deadline; only the processes started here are stopped.
"""

from __future__ import annotations

import argparse
import json
import linecache
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from target import Target, pinned_to, start_target
from throughput import choose_cores, compiled_engine, tail

HERE = Path(__file__).resolve().parent
CHILD = HERE / "gaggle_child.py"
PERF = Path("/usr/bin/perf")
PY_SPY = Path(sys.executable).parent / "py-spy"  # the bench extra's wheel puts it beside Python
ENGINES = ("pure", "compiled")
WARM_UP = 1.0  # seconds of load before the first window
TAIL = 0.5  # seconds kept between the last window and the end of the run
START_LIMIT = 60.0  # seconds the child may take to import and start its load
GRACE = 60.0  # seconds the child may take past its run to stop and write its result
LAUNCH = 0.5  # seconds kept for a profiler to start and attach
PERF_HZ = 999
SPY_HZ = 1000  # asked for: --native manages about 300
MIN_SECONDS, MAX_SECONDS = 5, 3600
MAX_USERS = 10_000

# Layers, in the table's order.
TASK = "user task (benchmark TaskSet)"
DSL = "DSL (taskset.py, response.py)"
RUNNER = "user runner (users/)"
SEAM = "seam (http/seam.py)"
CLIENT = "client (http/httptools_client.py)"
CONNECTION = "connection, parse (httptools_connection)"
HTTP_OTHER = "other http/"
METRICS = "record, aggregator (metrics/)"
GAGGLE_OTHER = "other gaggle/"
BYTECODE = "bytecode, not split (no py-spy)"
SEND = "kernel send (transport.write)"
LOOP = "event loop (uvloop, asyncio)"
THREADS = "other threads"
UNWOUND = "stack not unwound"
LAYERS = (
    *(TASK, DSL, RUNNER, SEAM, CLIENT, CONNECTION, HTTP_OTHER, METRICS, GAGGLE_OTHER),
    *(BYTECODE, SEND, LOOP, THREADS, UNWOUND),
)

# Libraries (the innermost frame's DSO), in the table's order.
INTERPRETER = "interpreter (libpython)"
KERNEL = "kernel"
UVLOOP = "uvloop (libuv)"
HTTPTOOLS = "httptools (llhttp)"
LIBC = "libc, vdso"
ASYNCIO_C = "_asyncio (C tasks)"
ENGINE_SO = "compiled engine (.so)"
OTHER = "other"
LIBRARIES = (INTERPRETER, KERNEL, UVLOOP, HTTPTOOLS, LIBC, ASYNCIO_C, ENGINE_SO, OTHER)

UV_WRITE = re.compile(r"UVStream_\d+write$")  # __pyx_pw_6uvloop_4loop_8UVStream_5write
SPY_FRAME = re.compile(r"^(?P<name>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
PERF_HEAD = re.compile(r"^\s*(?P<tid>\d+)\s+(?P<period>\d+)\s*$")
PERF_FRAME = re.compile(r"^\s+[0-9a-f]+\s+(?P<symbol>.*?)\s+\((?P<dso>.*)\)$")


# --- layers ----------------------------------------------------------------------------------
def layer_of(relative: str) -> str:
    """The layer of an engine module, by its path inside the gaggle package."""
    folder = relative.split("/")[0]
    if folder in ("users", "metrics"):
        return RUNNER if folder == "users" else METRICS
    named = {"taskset.py": DSL, "response.py": DSL, "http/seam.py": SEAM}
    named |= {"http/httptools_client.py": CLIENT, "http/httptools_connection.py": CONNECTION}
    return named.get(relative, HTTP_OTHER if folder == "http" else GAGGLE_OTHER)


class CompiledModules:
    """Which compiled module a mypyc C function belongs to: mypyc names them after the module
    (``CPyDef_user___User___request``, ``CPyDunder_am_senduser___request_User_gen``), by its
    last name or, where two share it, by a longer suffix of its dotted name."""

    def __init__(self, names: list[str]) -> None:
        self.tokens: list[tuple[str, str]] = []  # (suffix + "___", layer), longest first
        for name in names:
            parts = name.split(".")
            layer = layer_of("/".join(parts[1:]) + ".py")
            self.tokens += [("___".join(parts[i:]) + "___", layer) for i in range(len(parts))]
        self.tokens.sort(key=lambda token: -len(token[0]))

    def layer(self, symbol: str) -> str | None:
        found = [(symbol.find(token), layer) for token, layer in self.tokens if token in symbol]
        return min(found, key=lambda hit: hit[0])[1] if found else None  # stable: longest wins


def compiled_names(build: Path | None) -> list[str]:
    """The modules the build compiled (its extension modules: what it holds, whatever
    pyproject's list says now)."""
    if build is None:
        return []
    modules = [path.relative_to(build) for path in (build / "gaggle").rglob("*.so")]
    return [".".join((*path.parts[:-1], path.name.split(".")[0])) for path in modules]


def library_of(dso: str) -> str:
    name = dso.rsplit("/", 1)[-1]
    if dso.startswith("[kernel"):
        return KERNEL
    if "libpython" in name or name.startswith("python"):
        return INTERPRETER
    if "/uvloop/" in dso:
        return UVLOOP
    if "/httptools/" in dso:
        return HTTPTOOLS
    if dso == "[vdso]" or name.startswith(("libc.so", "libm.so", "ld-linux")):
        return LIBC
    if name.startswith("_asyncio."):
        return ASYNCIO_C
    compiled = "__mypyc" in name or ("/gaggle/" in dso and ".so" in name)  # code; module shims
    return ENGINE_SO if compiled else OTHER


def owner(frames: list[tuple[str, str]], modules: CompiledModules) -> str:
    """The layer of one perf sample, from its frames (symbol, dso), innermost first."""
    for symbol, dso in frames:
        if "/uvloop/" in dso:
            if UV_WRITE.search(symbol):
                return SEND
            if symbol == "uv_run":
                return LOOP
        elif "__mypyc" in dso:
            layer = modules.layer(symbol)
            if layer is not None:  # else mypyc's runtime (CPyIter_Send...): its caller decides
                return layer
        elif symbol == "_PyEval_EvalFrameDefault":
            return BYTECODE
    return UNWOUND


@dataclass
class Profile:
    """Sample weights by library and by layer, with how many samples made them."""

    libraries: Counter[str] = field(default_factory=Counter)
    layers: Counter[str] = field(default_factory=Counter)
    samples: int = 0

    def scaled(self, counter: Counter[str], total: float) -> dict[str, float]:
        """Each key's share of the samples, times ``total``."""
        whole = counter.total()
        return {key: weight / whole * total for key, weight in counter.items()} if whole else {}


def read_perf(script: str, pid: int, modules: CompiledModules) -> Profile:
    """``perf script -F tid,period,ip,sym,dso`` output, sample by sample."""
    profile = Profile()
    head: re.Match[str] | None = None
    frames: list[tuple[str, str]] = []

    def close() -> None:
        if head is None or not frames:
            return
        weight, tid = int(head["period"]), int(head["tid"])
        profile.samples += 1
        profile.libraries[library_of(frames[0][1])] += weight
        profile.layers[owner(frames, modules) if tid == pid else THREADS] += weight

    for line in script.splitlines():
        if (match := PERF_HEAD.match(line)) is not None:
            close()
            head, frames = match, []
        elif (frame := PERF_FRAME.match(line)) is not None:
            frames.append((frame["symbol"], frame["dso"]))
    close()
    return profile


def is_python(frame: re.Match[str]) -> bool:
    return frame["file"].endswith(".py") or frame["file"].startswith("<")


def python_layer(inner: list[re.Match[str]], modules: CompiledModules) -> str | None:
    """The layer of the innermost Gaggle or benchmark frame, Python or compiled; None when the
    innermost Python line is a ``transport.write`` (the kernel send: perf's)."""
    leaf = inner[-1]
    if "transport.write(" in linecache.getline(leaf["file"], int(leaf["line"] or 0)):
        return None
    for frame in reversed(inner):
        if not is_python(frame):
            compiled = modules.layer(frame["name"])
            if compiled is not None:
                return compiled
        elif Path(frame["file"]).resolve() == CHILD:
            return TASK
        elif "/gaggle/" in frame["file"]:
            return layer_of(frame["file"].rsplit("/gaggle/", 1)[1])
    return LOOP  # asyncio's own Python, called by the loop


def spy_layer(stack: list[re.Match[str]], modules: CompiledModules) -> str | None:
    """The layer of one py-spy sample (frames root first; native ones with ``--native``) when
    bytecode owns it, by perf's rule; None for whatever perf measures itself (the kernel send,
    the loop's own work, compiled code) and for other threads."""
    runner = [i for i, f in enumerate(stack) if f["name"] == "Runner.run" and is_python(f)]
    if not runner:
        return None
    inner = stack[runner[-1] + 1 :]
    for index in reversed(range(len(inner))):
        frame = inner[index]
        if is_python(frame):
            return python_layer(inner[: index + 1], modules)
        name = frame["name"]
        if name == "uv_run" or UV_WRITE.search(name) or modules.layer(name) is not None:
            return None
    return None  # the loop running no Python: busy or idle, perf's


def read_spy(raw: str, modules: CompiledModules) -> tuple[Counter[str], int]:
    """py-spy's bytecode samples by layer, and how many samples it took in all."""
    layers: Counter[str] = Counter()
    samples = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [SPY_FRAME.match(text) for text in stack.split(";")]
        if not count.isdigit() or not all(frames):
            continue
        samples += int(count)
        layer = spy_layer([frame for frame in frames if frame is not None], modules)
        if layer is not None:
            layers[layer] += int(count)
    return layers, samples


# --- one engine's run ------------------------------------------------------------------------
@dataclass
class CpuWindow:
    seconds: float
    requests: int
    cpu_ns: int  # every thread's time on a CPU
    user_ticks: int
    sys_ticks: int
    runqueue_ns: int  # the main thread's time runnable but not running: others on its CPU


@dataclass
class Result:
    engine: str
    window: CpuWindow
    child_us: float  # the child's own figure: its whole run's CPU over its requests
    perf: Profile | None = None
    spy: Counter[str] | None = None  # py-spy's bytecode samples by layer
    spy_samples: int = 0  # all its samples
    notes: list[str] = field(default_factory=list)

    @property
    def total_us(self) -> float:
        return self.window.cpu_ns / 1000 / max(1, self.window.requests)

    def split(self) -> tuple[float, float]:
        ticks = self.window.user_ticks + self.window.sys_ticks
        user = self.window.user_ticks / ticks if ticks else 0.0
        return user * self.total_us, (1 - user) * self.total_us

    def libraries(self) -> dict[str, float]:
        """µs per request by the library perf found each sample in."""
        return self.perf.scaled(self.perf.libraries, self.total_us) if self.perf else {}

    def layers(self) -> dict[str, float]:
        """µs per request by layer: perf's owners, the bytecode share split by py-spy's."""
        if self.perf is None or not self.perf.layers:
            return {}
        shares = self.perf.scaled(self.perf.layers, 1.0)
        if self.spy:
            bytecode = shares.pop(BYTECODE, 0.0)
            for layer, count in self.spy.items():
                shares[layer] = shares.get(layer, 0.0) + bytecode * count / self.spy.total()
        return {layer: share * self.total_us for layer, share in shares.items()}


def proc_times(pid: int) -> tuple[int, int, int, int]:
    """(user ticks, sys ticks, ns on a CPU over all threads, main thread's ns runnable)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    cpu_ns, runqueue_ns = 0, 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            on_cpu, waiting, _ = (task / "schedstat").read_text().split()
        except (OSError, ValueError):  # a thread that just ended
            continue
        cpu_ns += int(on_cpu)
        runqueue_ns += int(waiting) if task.name == str(pid) else 0
    return int(fields[11]), int(fields[12]), cpu_ns, runqueue_ns


def served(target: Target) -> int:
    count = target.served()
    if count is None:
        raise RuntimeError(f"the target at {target.url} did not report its count")
    return count


def measure_window(target: Target, pid: int, seconds: float) -> CpuWindow:
    before, started, times = served(target), time.monotonic(), proc_times(pid)
    time.sleep(seconds)
    after, ended, times_after = served(target), time.monotonic(), proc_times(pid)
    delta = [b - a for a, b in zip(times, times_after, strict=True)]
    return CpuWindow(ended - started, after - before, delta[2], delta[0], delta[1], delta[3])


class Run:
    """One engine's child, its windows and their files; ``commands`` as they were run."""

    def __init__(self, engine: str, build: Path | None, args: argparse.Namespace) -> None:
        self.engine, self.build, self.args = engine, build, args
        self.workdir: Path = args.workdir
        self.commands: list[str] = []

    def command(self, argv: list[str], env: dict[str, str] | None = None) -> list[str]:
        prefix = "".join(f"{key}={value} " for key, value in (env or {}).items())
        self.commands.append(f"{self.engine}: {prefix}{shlex.join(argv)}")
        return argv

    def measure(self, target: Target, cores: tuple[int, int]) -> Result:
        out = self.workdir / f"{self.engine}.json"
        log = self.workdir / f"{self.engine}.log"
        argv = [sys.executable, "-P", str(CHILD), f"--host={target.url}"]
        argv += [f"--users={self.args.users}", f"--seconds={self.args.seconds}", f"--out={out}"]
        env = {"PYTHONPATH": str(self.build)} if self.build else {}
        self.command(argv, env)
        with log.open("wb") as output:
            child = subprocess.Popen(
                argv,
                stdout=output,
                stderr=subprocess.STDOUT,
                preexec_fn=pinned_to(cores[0]),
                env={**os.environ, **env},
            )
            try:
                result = self._windows(target, child, cores, log)
                child.wait(timeout=self.args.seconds + GRACE)
            finally:
                if child.poll() is None:
                    child.kill()
                    child.wait(timeout=10)
        if child.returncode != 0 or not out.exists():
            raise RuntimeError(f"{self.engine} exited with {child.returncode}:\n{tail(log)}")
        summary = json.loads(out.read_text())
        result.child_us = summary["cpu_seconds"] * 1e6 / max(1, summary["requests"])
        if summary["failures"]:
            result.notes.append(f"{summary['failures']} failed requests: {summary['errors']}")
        return result

    def _windows(
        self, target: Target, child: subprocess.Popen[bytes], cores: tuple[int, int], log: Path
    ) -> Result:
        generator, other = cores
        baseline, deadline = served(target), time.monotonic() + START_LIMIT
        while served(target) == baseline:
            if child.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.engine}: no load in {START_LIMIT:.0f} s:\n{tail(log)}")
            time.sleep(0.05)
        end = time.monotonic() + self.args.seconds - TAIL
        time.sleep(WARM_UP)
        perf = PERF.exists()
        spy = PY_SPY.exists()
        span = end - time.monotonic() - LAUNCH * (perf + spy)
        spy_seconds = max(1, int(span / 2)) if spy else 0  # whole seconds; half: fewer samples
        window = (span - spy_seconds) / (1 + perf)
        result = Result(self.engine, measure_window(target, child.pid, window), 0.0)
        if not perf:
            result.notes.append(f"perf skipped: {PERF} not found")
        else:
            result.perf = self._perf(child.pid, other, window, result)
        if spy:
            left = int(end - time.monotonic())
            self._spy(child.pid, generator, max(1, min(spy_seconds, left)), result)
        else:
            result.notes.append(f"py-spy skipped: {PY_SPY} not found (pip install -e '.[bench]')")
        return result

    def _perf(self, pid: int, core: int, seconds: float, result: Result) -> Profile | None:
        data = self.workdir / f"{self.engine}.perf.data"
        record = [str(PERF), "record", "-F", str(PERF_HZ), "--call-graph", "dwarf,16384"]
        record += ["-p", str(pid), "-o", str(data), "--", "sleep", f"{seconds:.2f}"]
        done = subprocess.run(
            self.command(record),
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            preexec_fn=pinned_to(core),  # beside the target, not on the generator's CPU
            check=False,
        )
        if done.returncode != 0 or not data.exists():
            result.notes.append(f"perf record failed ({done.returncode}): {done.stderr[-300:]}")
            return None
        script = [
            str(PERF),
            "script",
            "-i",
            str(data),
            "-F",
            "tid,period,ip,sym,dso",
            "--no-inline",
        ]
        shown = subprocess.run(
            self.command(script), capture_output=True, text=True, timeout=600, check=False
        )
        if shown.returncode != 0:
            result.notes.append(f"perf script failed ({shown.returncode}): {shown.stderr[-300:]}")
            return None
        return read_perf(shown.stdout, pid, CompiledModules(compiled_names(self.build)))

    def _spy(self, pid: int, core: int, seconds: int, result: Result) -> None:
        raw = self.workdir / f"{self.engine}.py-spy.txt"
        argv = [str(PY_SPY), "record", "-f", "raw", "--full-filenames"]
        # Compiled functions are C: only --native (which pauses the child) shows them.
        argv += ["--native"] if self.build else ["--nonblocking"]
        argv += ["-r", str(SPY_HZ), "-d", str(seconds), "-p", str(pid), "-o", str(raw)]
        done = subprocess.run(
            self.command(argv),
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            # On the child's own CPU py-spy reads it while it is preempted, at any point of its
            # code: from another CPU its samples gathered at the child's system calls (a
            # getpid in get_running_loop had 40% of them, 2% of perf's).
            preexec_fn=pinned_to(core),
            check=False,
        )
        if done.returncode != 0 or not raw.exists():
            result.notes.append(f"py-spy failed ({done.returncode}): {done.stderr[-300:]}")
            return
        modules = CompiledModules(compiled_names(self.build))
        result.spy, result.spy_samples = read_spy(raw.read_text(), modules)


# --- the table -------------------------------------------------------------------------------
LABEL = 44  # width of the row labels


def cells(values: list[float | None], totals: list[float]) -> str:
    text = ""
    for value, total in zip(values, totals, strict=True):
        if value is None:
            text += f"{'-':>9}{'-':>8}"
        else:
            text += f"{value:>9.2f}{100 * value / total if total else 0.0:>7.1f}%"
    return text


def section(title: str, rows: dict[str, list[float | None]], totals: list[float]) -> None:
    print(title)
    shown = {label: values for label, values in rows.items() if any(values)}
    empty: dict[str, list[float | None]] = {"(none: see the notes)": [None] * len(totals)}
    for label, values in (shown or empty).items():
        print(f"  {label:<{LABEL - 2}}{cells(values, totals)}")


def report(results: list[Result], args: argparse.Namespace, commands: list[str]) -> None:
    totals = [result.total_us for result in results]
    print(
        f"\nGaggle's request path, CPU µs per request: {args.users} users, GET / without wait, "
        f"{args.seconds} s per engine; {', '.join(args.placement)}"
    )
    print(f"{'':<{LABEL}}" + "".join(f"{r.engine:>17}" for r in results))
    print(f"{'':<{LABEL}}" + f"{'µs/req':>9}{'share':>8}" * len(results))
    splits = [result.split() for result in results]
    cpu: dict[str, list[float | None]] = {"total": list(totals)}
    cpu |= {"user": [user for user, _ in splits], "sys": [system for _, system in splits]}
    section("CPU (no profiler attached)", cpu, totals)
    sections = [
        ("by library (perf: the innermost frame's DSO)", LIBRARIES, Result.libraries),
        ("by layer (perf; its bytecode share split by py-spy)", LAYERS, Result.layers),
    ]
    for title, names, method in sections:
        found = [method(result) for result in results]
        section(title, {n: [f.get(n) if f else None for f in found] for n in names}, totals)
    print()
    for result in results:
        window = result.window
        waited = 100 * window.runqueue_ns / (window.seconds * 1e9)
        print(
            f"{result.engine}: window {window.seconds:.1f} s, {window.requests} requests "
            f"({window.requests / window.seconds:.0f}/s); its main thread waited {waited:.0f}% "
            f"of it for its CPU (others' load; 0 on a quiet machine); whole run "
            f"{result.child_us:.2f} µs/req (its own figure; profilers attached to part of it)"
        )
        if result.perf:
            bytecode = 100 * result.perf.scaled(result.perf.layers, 1.0).get(BYTECODE, 0.0)
            print(f"  perf {result.perf.samples} samples, {bytecode:.1f}% in bytecode", end="")
            spy = result.spy
            print(f"; py-spy {result.spy_samples}, {spy.total()} in bytecode" if spy else "")
        for note in result.notes:
            print(f"  note: {note}")
    print("\ncommands:")
    for line in commands:
        print(f"  {line}")


# --- main ------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="each engine's run (default 10)")
    parser.add_argument("--users", type=int, default=50, help="closed-loop users (default 50)")
    parser.add_argument("--engine", choices=("pure", "compiled", "both"), default="both")
    parser.add_argument("--keep", action="store_true", help="keep the work folder: logs, profiles")
    args = parser.parse_args(argv)
    if not MIN_SECONDS <= args.seconds <= MAX_SECONDS:
        parser.error(
            f"--seconds: {args.seconds} is out of range; use {MIN_SECONDS} to {MAX_SECONDS} "
            "(the windows need a few seconds of load)"
        )
    if not 1 <= args.users <= MAX_USERS:
        parser.error(f"--users: {args.users} is out of range; use 1 to {MAX_USERS}")
    return args


def run(args: argparse.Namespace) -> None:
    engines = list(ENGINES) if args.engine == "both" else [args.engine]
    builds: dict[str, Path | None] = {"pure": None}
    commands: list[str] = []
    if "compiled" in engines:
        build = compiled_engine()  # before the target starts: a cold build takes a minute
        if build is None:
            engines.remove("compiled")
        else:
            builds["compiled"] = build
            commands.append(f"compiled: {sys.executable} tools/compiled.py  # -> {build}")
    if not engines:
        raise RuntimeError("no engine left to measure")
    generator, other = choose_cores()
    target = start_target(other, args.workdir, args.users + 64)
    args.placement = [f"{target.kind} on CPU {other}", f"Gaggle on CPU {generator}"]
    argv = target.process.args
    shown = shlex.join(map(str, argv)) if isinstance(argv, list) else str(argv)
    commands.append(f"target: {shown}")
    results = []
    try:
        for engine in engines:
            measured = Run(engine, builds[engine], args)
            results.append(measured.measure(target, (generator, other)))
            commands += measured.commands
    finally:
        target.stop()
    report(results, args, commands)


def main() -> int:
    args = parse_args()
    args.workdir = Path(tempfile.mkdtemp(prefix="gaggle-breakdown-"))
    try:
        run(args)
    except (RuntimeError, TimeoutError, subprocess.TimeoutExpired) as error:
        print(f"breakdown failed: {error}\n(files kept in {args.workdir})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted (files kept in {args.workdir})", file=sys.stderr)
        return 130
    if args.keep:
        print(f"\nfiles kept in {args.workdir}")
    else:
        shutil.rmtree(args.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
