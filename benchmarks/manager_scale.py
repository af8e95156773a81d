"""How many workers one manager holds: real deltas from N simulated workers, replayed into one
real manager process over gRPC on loopback.

The manager is ``gaggle run FILE --manager --expect-workers N`` (default options otherwise, so it
reads its totals each second for its status lines, as a manager in a pod does), pinned to one
core. The simulated workers run on the other core, many per process (``grpc.aio``, a channel
each, as many TCP connections as workers), and speak the real protocol: a hello with the test's
rules hash, then from the common start instant one delta a second each plus a heartbeat a
second, then a final delta when the manager says stop. The deltas are what a worker sends: the
engine's ``Aggregator`` fed ``RequestRecord``s (status codes 200/302/404/500, times log-uniform
over 1 ms–2 s, a wide spread), encoded by ``codec.to_delta`` and serialized once; each worker
replays a pool of them, its own sequence numbers appended as protobuf fields. A stream names each
key once, as a worker's does: its first pass over the pool is encoded for it (the deltas that
first carry a key name it), later passes carry ids only.

Per case it prints: the size of a delta (the mean over a stream's run, its naming deltas
included), the bytes the workers sent the manager a second (the serialized messages, and the TCP
bytes the manager's sockets received, from ``ss``), the manager's CPU (``/proc/PID/stat``
over the steady window, in % of one core), its peak RSS (VmHWM), whether any worker was lost, the
longest gap between the manager's heartbeats that any worker heard (a worker gives its manager up
after 4 s; the manager beats every second), the longest a delta waited to be taken by the
manager's transport, the simulators' own CPU, and the fold measured in this process: parsing,
checking and folding one second of the same deltas (``DeltaLedger.check`` + ``Totals.merge``)
plus one read of the totals. The run is counted with --no-reset-metrics, so the manager's summary
must count exactly the requests the deltas carried.

Cases (``--cases``): ``N×200`` workers × request names, every name requested each second
(``--per-name`` times, 5 by default: 1,000 requests a second a worker), and ``1×100000``: one
worker whose request names are 100,000 paths, each delta a second carrying ``--wide-rows`` of
them (10,000: about what one core sends a second), so all have arrived after 10 s.

    .venv/bin/python benchmarks/manager_scale.py [--cases 10x200,100x200,1000x200,1x100000]
        [--seconds 20] [--per-name 5] [--compression gzip] [--profile] [--quick]

``--profile`` runs the manager under cProfile over the measured window (slower: its figures are
not the measurement) and prints where its time went. Load only ever goes to 127.0.0.1; every
child has a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import itertools
import json
import math
import os
import pstats
import random
import re
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from target import free_port, pinned_to, raise_nofile_limit
from throughput import choose_cores

# This folder holds a gaggle.py: it must leave sys.path before gaggle is imported.
HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]

import grpc  # noqa: E402

from gaggle.cli.loader import load_test  # noqa: E402
from gaggle.distributed.codec import KeyIds, to_delta  # noqa: E402
from gaggle.distributed.protocol import PROTOCOL_VERSION  # noqa: E402
from gaggle.distributed.rules import rules_hash, rules_json  # noqa: E402
from gaggle.distributed.security import CHANNEL_OPTIONS  # noqa: E402
from gaggle.metrics import Aggregator, Metrics, RequestRecord, TaskRecord  # noqa: E402
from gaggle.wire import gaggle_pb2 as wire  # noqa: E402

JOIN = "/gaggle.v1.Gaggle/Join"
STATUSES = ((200, 94), (302, 3), (404, 2), (500, 1))
TASKS = 5  # task rows a delta carries besides its request rows
POOL = 16  # distinct deltas per case; each worker replays them from its own offset
WARM_UP = 2.0  # seconds after the common start before the measured window opens
CLK_TCK = os.sysconf("SC_CLK_TCK")
TEST_FILE = '''\
"""The manager's test: its rules are what the simulated workers' hellos hash."""

from gaggle import TaskSet, constant, task


class Api(TaskSet):
    wait_time = constant(1)

    @task
    async def browse(self) -> None:
        await self.get("/")
'''
# The manager under cProfile for the measured window only: SIGUSR1 starts it, SIGUSR2 writes it.
PROFILED = """
import cProfile, signal, sys
from gaggle.cli import entry
path, profiler = sys.argv.pop(1), cProfile.Profile()
def stop(*_):
    profiler.disable()
    profiler.dump_stats(path)
signal.signal(signal.SIGUSR1, lambda *_: profiler.enable())
signal.signal(signal.SIGUSR2, stop)
sys.exit(entry())
"""
AGGREGATED = re.compile(r"^\s*Aggregated\s+([\d,]+)\s+([\d,]+)", re.MULTILINE)


# --- the deltas -------------------------------------------------------------------------------
@dataclass
class Stream:
    """What a simulated worker's stream sends (serialized deltas without sequence): its first
    pass over the pool, naming each key in the first delta that has it, then the pool's deltas
    by ids alone; and the requests each pool delta counts."""

    first: list[bytes]  # the stream's deltas 1..len(pool)
    later: list[bytes]  # by pool position, from its delta len(pool) + 1 on
    requests: list[int]  # by pool position

    def delta(self, index: int, second: int) -> tuple[bytes, int]:
        """Worker ``index``'s delta of ``second`` (from 1) and the requests it counts."""
        position = (index + second) % len(self.later)
        payload = self.first[second - 1] if second <= len(self.first) else self.later[position]
        return payload, self.requests[position]


def offset_of(index: int, pool: int) -> int:
    """The pool position worker ``index``'s first delta comes from."""
    return (index + 1) % pool


def build_pool(names: int, per_name: int, rows: int, seed: int) -> list[tuple[Metrics, int]]:
    """POOL deltas' metrics, each with the requests it counts. Delta i requests ``rows`` names
    from ``i * rows`` on (mod ``names``), each ``per_name`` times."""
    rng = random.Random(seed)
    codes, weights = zip(*STATUSES, strict=True)
    low, high = math.log(1_000), math.log(2_000_000)
    pool = []
    for i in range(POOL if rows == names else math.ceil(names / rows)):
        aggregator = Aggregator()
        for row in range(rows):
            number = (i * rows + row) % names
            name = f"/api/item/{number}" if names > 1000 else f"/api/resource/{number}"
            method = "POST" if number % 5 == 0 else "GET"
            for status in rng.choices(codes, weights, k=per_name):
                elapsed = int(math.exp(rng.uniform(low, high)))
                record = RequestRecord(0, method, name, name, name, False, elapsed, status,
                                       status < 400, False, 0)  # fmt: skip
                aggregator.record_request(record)
                aggregator.record_task(TaskRecord(0, 0, row % TASKS, "t", elapsed, True, 0))
        metrics = aggregator.drain()
        requests = sum(stats.count for stats in metrics.requests.values())
        pool.append((metrics, requests))
    return pool


def build_streams(pool: list[tuple[Metrics, int]], workers: int) -> dict[int, Stream]:
    """The stream of each pool offset the workers start at (their keys numbered in the order
    the stream meets them)."""
    streams = {}
    for offset in sorted({offset_of(index, len(pool)) for index in range(workers)}):
        keys = KeyIds()
        first = [
            to_delta(pool[(offset + i) % len(pool)][0], 0, 1, False, keys).SerializeToString()
            for i in range(len(pool))
        ]
        later = [to_delta(metrics, 0, 1, False, keys).SerializeToString() for metrics, _ in pool]
        streams[offset] = Stream(first, later, [requests for _, requests in pool])
    return streams


def write_streams(path: Path, streams: dict[int, Stream]) -> None:
    with path.open("wb") as file:
        for offset, stream in streams.items():
            file.write(struct.pack("<II", offset, len(stream.later)))
            for payload, requests in zip(stream.first, stream.requests, strict=True):
                file.write(struct.pack("<QI", requests, len(payload)) + payload)
            for payload in stream.later:
                file.write(struct.pack("<QI", 0, len(payload)) + payload)


def read_streams(path: Path) -> dict[int, Stream]:
    data, streams, at = path.read_bytes(), {}, 0
    while at < len(data):
        offset, size = struct.unpack_from("<II", data, at)
        at += 8
        payloads, requests = [], []
        for _ in range(2 * size):
            count, length = struct.unpack_from("<QI", data, at)
            at += 12
            payloads.append(data[at : at + length])
            requests.append(count)
            at += length
        streams[offset] = Stream(payloads[:size], payloads[size:], requests[:size])
    return streams


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def as_message(delta: bytes, sequence: int, final: bool = False) -> bytes:
    """A ``WorkerMessage`` holding ``delta`` with its sequence: a protobuf field parsed later
    wins, so the pool's bytes are sent as they are and only the few bytes after them differ."""
    tail = wire.Delta(sequence=sequence, hatched=True, final=final).SerializeToString()
    return b"\x12" + _varint(len(delta) + len(tail)) + delta + tail  # field 2 (delta), bytes


# --- a simulated worker (in a simulator process) ----------------------------------------------
# what a worker sends, in order: a message and when a delta was queued (0.0: not a delta);
# None half-closes the stream
Outbox = asyncio.Queue[tuple[bytes, float] | None]


@dataclass
class SimWorker:
    index: int
    hello: bytes
    stream: Stream
    deltas: int = 0
    requests: int = 0
    sent_bytes: int = 0
    beat_gap: float = 0.0  # the longest between two heartbeats of the manager, seconds
    gap_at: float = 0.0  # when that gap ended, seconds after the common start
    stop_at: float = 0.0  # when the manager's Stop came (Unix time)
    delay: float = 0.0  # the longest a delta waited to be taken by gRPC: the manager's pushback
    tick_late: float = 0.0  # the longest this simulator's own loop was late for a tick
    start_at: float = 0.0
    started: str = ""  # a file to write the common start instant in (the first to hear it)
    ended: str = ""
    stopped: bool = field(default=False)

    async def run(self, address: str, compression: grpc.Compression, deadline: float) -> None:
        async with grpc.aio.insecure_channel(
            address, options=CHANNEL_OPTIONS, compression=compression
        ) as channel:
            join = channel.stream_stream(
                JOIN,
                request_serializer=lambda message: message,
                response_deserializer=wire.ManagerMessage.FromString,
            )
            call = join()  # type: ignore[call-arg]  # no iterator: the call's write()
            outbox: Outbox = asyncio.Queue()
            outbox.put_nowait((self.hello, 0.0))
            tasks: list[asyncio.Future[None]] = [asyncio.ensure_future(self._write(call, outbox))]
            try:
                async with asyncio.timeout(max(1.0, deadline - time.time())):
                    await self._read(call, outbox, tasks)
            except TimeoutError:
                self.ended = "deadline"
            except grpc.aio.AioRpcError as error:
                self.ended = f"{error.code().name}: {error.details()}"
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _read(self, call: Any, outbox: Outbox, tasks: list[asyncio.Future[None]]) -> None:
        last_beat: float | None = None
        while (message := await call.read()) is not grpc.aio.EOF:  # type: ignore[attr-defined]
            kind = message.WhichOneof("body")
            now = time.monotonic()
            if kind == "heartbeat":
                if last_beat is not None and not self.stopped and now - last_beat > self.beat_gap:
                    self.beat_gap, self.gap_at = now - last_beat, time.time() - self.start_at
                last_beat = now
            elif kind == "welcome":
                last_beat = now
                tasks.append(asyncio.ensure_future(self._beat(outbox)))
            elif kind == "refused":
                self.ended = f"refused: {message.refused.reason}"
            elif kind == "start":
                self.start_at = message.start.start_at
                note_start(self.started, self.start_at)
                tasks.append(asyncio.ensure_future(self._pump(outbox)))
            elif kind == "stop" and not self.stopped:
                self.stopped, self.stop_at = True, time.time()
                self.deltas += 1
                final = to_delta(Metrics(), 0, 0, False).SerializeToString()
                outbox.put_nowait((as_message(final, self.deltas, final=True), 0.0))
                outbox.put_nowait(None)  # then half-close, as a real worker's link does
        self.ended = self.ended or "ok"

    async def _write(self, call: Any, outbox: Outbox) -> None:
        while (item := await outbox.get()) is not None:
            message, queued = item
            await call.write(message)
            if queued:
                self.delay = max(self.delay, time.monotonic() - queued)
        await call.done_writing()

    async def _beat(self, outbox: Outbox) -> None:
        beat = wire.WorkerMessage(heartbeat=wire.Heartbeat(loop_lag_seconds=0.001))
        data = beat.SerializeToString()
        while True:
            await asyncio.sleep(1.0)
            outbox.put_nowait((data, 0.0))
            self.sent_bytes += len(data)

    async def _pump(self, outbox: Outbox) -> None:
        """A delta at each second after the common start, as a worker's pump sends them."""
        second = 0
        while True:
            second += 1
            due = self.start_at + second
            await asyncio.sleep(max(0.0, due - time.time()))
            if self.stopped:  # the Stop came meanwhile: its final delta is the last
                return
            self.tick_late = max(self.tick_late, time.time() - due)
            payload, requests = self.stream.delta(self.index, second)
            self.deltas += 1
            message = as_message(payload, self.deltas)
            self.sent_bytes += len(message)
            self.requests += requests
            outbox.put_nowait((message, time.monotonic()))


def note_start(path: str, start_at: float) -> None:
    """The common start instant, for the measuring process (written once, whole)."""
    if path and not os.path.exists(path):
        Path(f"{path}.{os.getpid()}").write_text(repr(start_at))
        os.replace(f"{path}.{os.getpid()}", path)


async def simulate(config: dict[str, Any]) -> dict[str, Any]:
    streams = read_streams(Path(config["pool"]))
    hello = wire.WorkerMessage(hello=wire.Hello(
        protocol_version=PROTOCOL_VERSION, gaggle_version="bench", rules_hash=config["hash"],
        rules_json=config["rules"], name="sim")).SerializeToString()  # fmt: skip
    check = wire.WorkerMessage.FromString(as_message(next(iter(streams.values())).first[0], 7))
    assert (check.delta.sequence, check.delta.hatched) == (7, True), "a wrongly composed message"
    compression = grpc.Compression.Gzip if config["gzip"] else grpc.Compression.NoCompression
    span = range(config["first"], config["last"])
    pool = len(next(iter(streams.values())).later)
    workers = [
        SimWorker(i, hello, streams[offset_of(i, pool)], started=config["started"]) for i in span
    ]
    runs = [w.run(config["address"], compression, config["deadline"]) for w in workers]
    await asyncio.gather(*runs)
    ended: dict[str, int] = {}
    for worker in workers:
        ended[worker.ended] = ended.get(worker.ended, 0) + 1
    return {
        "requests": sum(w.requests for w in workers),
        "sent_bytes": sum(w.sent_bytes for w in workers),
        "deltas": sum(w.deltas for w in workers),
        "beat_gap": max(w.beat_gap for w in workers),
        "gap_at": max(workers, key=lambda w: w.beat_gap).gap_at,
        "stop_at": max(w.stop_at for w in workers),
        "delay": max(w.delay for w in workers),
        "tick_late": max(w.tick_late for w in workers),
        "start_at": max(w.start_at for w in workers),
        "ended": ended,
    }


# --- measuring the manager --------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """utime + stime of a running process (and its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def received_bytes(port: int) -> int | None:
    """TCP bytes the manager's sockets on ``port`` received so far (None: ``ss`` says nothing)."""
    try:
        query = ["ss", "-tinH", "state", "established", f"( sport = :{port} )"]
        out = subprocess.run(query, capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = [int(n) for n in re.findall(r"bytes_received:(\d+)", out)]
    return sum(found) if found else None


def fold_cost(streams: dict[int, Stream], workers: int) -> tuple[float, float]:
    """CPU ms one second of ``workers`` deltas costs to parse, check and fold in this process,
    and one read of the totals (the median of a few seconds, after one to warm up: the one in
    which the streams name their keys)."""
    from gaggle.distributed.delta_checks import DeltaLedger
    from gaggle.distributed.delta_tables import decode
    from gaggle.distributed.merged_tally import Totals

    totals, ledgers = Totals(), [DeltaLedger() for _ in range(workers)]
    pool = len(next(iter(streams.values())).later)
    folds, reads = [], []
    for second in range(1, 5 if workers < 1000 else 3):
        started = time.process_time()
        for index, ledger in enumerate(ledgers):
            payload, _ = streams[offset_of(index, pool)].delta(index, second)
            delta = wire.WorkerMessage.FromString(as_message(payload, second)).delta
            tables = decode(delta, ledger.keys)  # once for both, as the servicer does
            assert ledger.check(delta, True, tables) == "", "a replayed delta was refused"
            totals.merge(delta, tables)
        folded = time.process_time()
        totals.metrics()
        folds.append((folded - started) * 1000)
        reads.append((time.process_time() - folded) * 1000)
    return statistics.median(folds[1:]), statistics.median(reads[1:])


@dataclass
class Case:
    workers: int
    names: int
    rows: int  # names a delta carries
    per_name: int

    @property
    def label(self) -> str:
        return f"{self.workers:,} × {self.names:,}"


def parse_case(text: str, per_name: int, wide_rows: int) -> Case:
    workers, names = (int(part) for part in text.lower().split("x"))
    rows = names if names <= 1000 else min(names, wide_rows)
    return Case(workers, names, rows, per_name if names <= 1000 else 1)


def run_case(case: Case, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    pool = build_pool(case.names, case.per_name, case.rows, seed=case.workers)
    streams = build_streams(pool, case.workers)
    pool_path = workdir / f"pool-{case.workers}-{case.names}.bin"
    write_streams(pool_path, streams)
    # what a stream sends over the run, its first deltas (the names) included
    stream = streams[offset_of(0, len(pool))]
    sizes = [len(stream.delta(0, second)[0]) for second in range(1, args.seconds + 1)]
    fold_ms, read_ms = fold_cost(streams, case.workers)
    test = workdir / "api.py"
    test.write_text(TEST_FILE)
    tasksets, _ = load_test(str(test))
    port = free_port()
    manager_core, sim_core = choose_cores() if not args.no_pin else (None, None)
    profile = workdir / f"manager-{case.workers}.prof"
    started = workdir / f"started-{case.workers}-{case.names}"
    argv = ["run", str(test), "--manager", "--expect-workers", str(case.workers),
            "--manager-bind-host", "127.0.0.1", "--manager-bind-port", str(port),
            "--host", "http://127.0.0.1:9", "-u", str(case.workers), "-r", "1000",
            "-t", f"{args.seconds}s", "--no-reset-metrics",
            "--metrics-bind", f"127.0.0.1:{free_port()}"]  # fmt: skip
    # this interpreter and its sys.path: PYTHONPATH=/elsewhere/worker measures another checkout
    launch = ["-c", PROFILED, str(profile)] if args.profile else ["-m", "gaggle"]
    argv = [sys.executable, *launch, *argv]
    out, err = (workdir / "manager.out").open("w+"), (workdir / "manager.err").open("w+")
    manager = subprocess.Popen(
        argv, stdout=out, stderr=err, text=True,
        preexec_fn=pinned_to(manager_core) if manager_core is not None else raise_nofile_limit,
    )  # fmt: skip
    deadline = time.time() + args.seconds + 90 + case.workers / 20 + case.names / 250
    processes = args.simulators or max(1, min(4, math.ceil(case.workers / 350)))
    sims: list[subprocess.Popen[str]] = []
    try:
        wait_listening(manager, port)
        bounds = [round(case.workers * i / processes) for i in range(processes + 1)]
        for first, last in itertools.pairwise(bounds):
            config = {"address": f"127.0.0.1:{port}", "pool": str(pool_path), "first": first,
                      "last": last, "hash": rules_hash(tasksets), "rules": rules_json(tasksets),
                      "gzip": args.compression == "gzip", "deadline": deadline,
                      "started": str(started)}  # fmt: skip
            sims.append(subprocess.Popen(
                [sys.executable, __file__, "--simulate", json.dumps(config)], text=True,
                stdout=subprocess.PIPE,
                preexec_fn=pinned_to(sim_core) if sim_core is not None else raise_nofile_limit,
            ))  # fmt: skip
        window = measure(manager, sims, port, started, args.seconds, deadline, args.profile)
        code, peak_mb = wait_for_exit(manager, deadline)
        exited = time.time()
        reports = [json.loads(sim.communicate(timeout=max(1.0, deadline - time.time()))[0])
                   for sim in sims]  # fmt: skip
    except (RuntimeError, ValueError, subprocess.TimeoutExpired) as error:
        out.seek(0)
        err.seek(0)
        tails = f"its output ends:\n{out.read()[-1500:]}\nits log ends:\n{err.read()[-3000:]}"
        raise RuntimeError(f"{error}; {tails}") from None
    finally:
        for process in (manager, *sims):
            if process.poll() is None:
                process.kill()
                process.wait()
    out.seek(0)
    err.seek(0)
    stdout, stderr = out.read(), err.read()
    counted = AGGREGATED.search(stdout, stdout.find("PER REQUEST METRICS"))
    result = {
        "case": case.label, "rows": case.rows, "per_name": case.per_name, "exit": code,
        "delta_kib": statistics.mean(sizes) / 1024, "fold_ms": fold_ms, "read_ms": read_ms,
        "lost": len(re.findall(r"lost worker \d+", stderr)), **window,
        "sent": sum(r["requests"] for r in reports),
        "counted": int(counted.group(1).replace(",", "")) if counted else None,
        "payload_s": sum(r["sent_bytes"] for r in reports) / window["run_s"],
        "deltas": sum(r["deltas"] for r in reports),
        "beat_gap": max(r["beat_gap"] for r in reports),
        "gap_at": max(reports, key=lambda r: r["beat_gap"])["gap_at"],
        "end_s": exited - max(r["stop_at"] for r in reports), "exit_rss_mb": peak_mb,
        "delay": max(r["delay"] for r in reports),
        "tick_late": max(r["tick_late"] for r in reports),
        "ended": merge_counts([r["ended"] for r in reports]),
        "stderr_tail": stderr[-1500:] if code else "",
    }  # fmt: skip
    if args.profile:
        result["profile"] = top_of_profile(profile)
    return result


def wait_for_exit(process: subprocess.Popen[str], deadline: float) -> tuple[int, float]:
    """Wait for a process we started (by its pid, until ``deadline``): (its exit code, its
    peak RSS in MB over its whole life, the final tables included)."""
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return process.returncode, usage.ru_maxrss / 1024  # Linux: kilobytes
        if time.time() > deadline:
            raise subprocess.TimeoutExpired(process.args, 0)
        time.sleep(0.1)


def merge_counts(parts: list[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for part in parts:
        for key, count in part.items():
            total[key] = total.get(key, 0) + count
    return total


def wait_listening(manager: subprocess.Popen[str], port: int) -> None:
    import socket

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if manager.poll() is not None:
            raise RuntimeError(f"the manager exited {manager.returncode} before listening")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("the manager did not listen within 60 s")


def measure(
    manager: subprocess.Popen[str], sims: list[subprocess.Popen[str]], port: int,
    started: Path, seconds: int, deadline: float, profile: bool,
) -> dict[str, Any]:  # fmt: skip
    """CPU, bytes and RSS over the steady window: from WARM_UP after the common start (the
    simulators write it down when the Start comes) to a second before the run time ends."""
    joined_from, start_at = time.time(), 0.0
    while not start_at:
        if manager.poll() is not None or time.time() > deadline:
            raise RuntimeError("the manager ended or overstayed before the start")
        with contextlib.suppress(OSError, ValueError):
            start_at = float(started.read_text())
        time.sleep(0.1)
    join_s = start_at - 1.0 - joined_from  # the Start goes out 1 s before the common instant
    time.sleep(max(0.0, start_at + WARM_UP - time.time()))
    before = snapshot(manager, sims, port)
    if profile:
        os.kill(manager.pid, signal.SIGUSR1)
    time.sleep(max(0.0, start_at + seconds - 1.0 - time.time()))
    after = snapshot(manager, sims, port)
    if profile:
        os.kill(manager.pid, signal.SIGUSR2)
    span = after["t"] - before["t"]
    wire_in = after["rx"] - before["rx"] if after["rx"] is not None and before["rx"] else None
    return {
        "join_s": join_s, "window_s": span, "run_s": float(seconds),
        "manager_cpu": (after["cpu"] - before["cpu"]) / span,
        "sims_cpu": (after["sims"] - before["sims"]) / span,
        "rss_mb": after["rss"], "wire_s": wire_in / span if wire_in is not None else None,
    }  # fmt: skip


def snapshot(
    manager: subprocess.Popen[str], sims: list[subprocess.Popen[str]], port: int
) -> dict[str, Any]:
    return {
        "t": time.monotonic(),
        "cpu": cpu_seconds(manager.pid),
        "sims": sum(cpu_seconds(sim.pid) for sim in sims),
        "rss": vm_hwm_mb(manager.pid),
        "rx": received_bytes(port),
    }


def top_of_profile(path: Path, lines: int = 22) -> str:
    if not path.exists():
        return "(no profile written)"
    texts = []
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(str(path), stream=out).sort_stats(order).print_stats(lines)
        text = out.getvalue()
        texts.append(f"by {order}:\n{text[text.find('ncalls') :].rstrip()}")
    return "\n".join(texts)


# --- the table ---------------------------------------------------------------------------------
def print_table(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"\nOne manager, {args.seconds} s runs, deltas of 1 s"
          f"{', gzip on the wire' if args.compression == 'gzip' else ''}:")  # fmt: skip
    head = ("workers × names", "rows/delta", "KiB/delta", "MB/s in", "TCP MB/s", "manager CPU",
            "fold+check", "read", "peak RSS", "lost", "beat gap", "delta wait", "sims CPU",
            "counted")  # fmt: skip
    print("| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head))
    for r in results:
        wire_s = f"{r['wire_s'] / 1e6:.2f}" if r.get("wire_s") is not None else "—"
        counted = "exact" if r["counted"] == r["sent"] else f"{r['counted']} of {r['sent']}"
        fold_share = r["fold_ms"] / 10  # ms per second → % of a core
        payload = r["payload_s"] / 1e6
        cells = (r["case"], f"{r['rows']:,}", f"{r['delta_kib']:.1f}", f"{payload:.2f}",
                 wire_s, f"{r['manager_cpu']:.0%}", f"{fold_share:.1f}%",
                 f"{r['read_ms']:.1f} ms", f"{r['rss_mb']:.0f} MB", str(r["lost"]),
                 f"{r['beat_gap']:.2f} s", f"{r['delay']:.2f} s", f"{r['sims_cpu']:.0%}",
                 counted)  # fmt: skip
        print("| " + " | ".join(cells) + " |")
    for r in results:
        print(
            f"\n{r['case']}: joined in {r['join_s']:.1f} s; streams ended {r['ended']}; manager "
            f"exit {r['exit']}; the simulators' ticks were at most {r['tick_late']:.2f} s late; "
            f"the longest heartbeat gap ended {r['gap_at']:.1f} s after the start; from the Stop "
            f"to its exit (final tables) the manager took {r['end_s']:.1f} s and peaked at "
            f"{r['exit_rss_mb']:.0f} MB"
        )
        if r["stderr_tail"]:
            print(r["stderr_tail"])
        if "profile" in r:
            print(f"cProfile of the manager over the window, {r['profile']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="10x200,100x200,1000x200,1x100000")
    parser.add_argument("--seconds", type=int, default=20, help="the manager's -t")
    parser.add_argument("--per-name", type=int, default=5, help="requests a name a second")
    parser.add_argument("--wide-rows", type=int, default=10_000,
                        help="names a delta of the 100,000-name case carries")  # fmt: skip
    parser.add_argument("--simulators", type=int, default=0, help="processes (0: by N)")
    parser.add_argument("--compression", choices=("none", "gzip"), default="none")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to two cores")
    parser.add_argument("--profile", action="store_true", help="the manager under cProfile")
    parser.add_argument("--quick", action="store_true", help="10x200,100x200 for 8 s")
    parser.add_argument("--simulate", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.simulate:
        raise_nofile_limit()
        print(json.dumps(asyncio.run(simulate(json.loads(args.simulate)))))
        return
    if args.quick:
        args.cases, args.seconds = "10x200,100x200", 8
    raise_nofile_limit()
    cases = [parse_case(text, args.per_name, args.wide_rows) for text in args.cases.split(",")]
    results = []
    with tempfile.TemporaryDirectory(prefix="gaggle-scale-") as tmp:
        for case in cases:
            print(f"case {case.label}: {case.rows:,} rows a delta, {case.per_name} request(s) "
                  "a row ...", flush=True)  # fmt: skip
            results.append(run_case(case, args, Path(tmp)))
    print_table(results, args)


if __name__ == "__main__":
    main()
