"""A gaggle that sends every request to a path of its own (review D3): the manager's totals hold
what they counted, not a whole row of buckets and status codes per request name, so 100,000 names
neither stall the manager nor cost it gigabytes, and every request is counted once. Unit tests
check the fold against the plain-Python reference decoder; one real gaggle (a manager and two
workers, all started with the CLI, on 127.0.0.1) against the counting target."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import time
import tracemalloc
from pathlib import Path

import pytest

from gaggle.distributed.codec import KeyIds, to_delta
from gaggle.distributed.delta_tables import StreamKeys, decode
from gaggle.distributed.merged_tally import Totals
from gaggle.metrics import Aggregator, Metrics, RequestRecord, TaskRecord
from gaggle.wire import gaggle_pb2 as wire
from tests.conftest import (
    ROOT,
    Target,
    finish,
    free_port,
    gaggle_command,
    kill_leftovers,
    spawn_gaggle,
    write_test,
)
from tests.support.reference_codec import Names, column, merge_delta, values

STATUSES = (200, 200, 200, 302, 404, 503, 0)


def request(rng: random.Random, name: str, elapsed_us: int | None = None) -> RequestRecord:
    status = rng.choice(STATUSES)
    if elapsed_us is None:  # log-uniform over 1 µs .. 100 s: windows from one bucket to ~3,000
        elapsed_us = int(math.exp(rng.uniform(0, math.log(10**8))))
    return RequestRecord(
        0, rng.choice(("GET", "POST")), name, name, name, False, elapsed_us, status,
        0 < status < 400, False, 0, "" if status else "refused",
    )  # fmt: skip


def test_d3_many_names_fold_as_the_reference_decodes_them() -> None:
    """One worker's stream: each of 12,000 names travels once, then its rows carry its id."""
    rng = random.Random(3)
    totals, reference = Totals(), Metrics()
    ids, keys, names = KeyIds(), StreamKeys(), Names()
    busy = [f"/busy/{i}" for i in range(40)]  # seen in every delta: their windows keep widening
    for sequence in range(1, 9):
        aggregator = Aggregator()
        for i in range(1500):  # a name of its own per request, as with one path per request
            record = request(rng, f"/item/{sequence}/{i}")
            aggregator.record_request(record)
            aggregator.record_task(TaskRecord(0, 0, i % 7, "t", record.response_time_us, True, 0))
        for name in busy:
            for _ in range(rng.randrange(1, 30)):
                aggregator.record_request(request(rng, name))
        for i in range(0, 1500 * (sequence - 1), 97):  # a verdict flipped alone: a row, no buckets
            old = request(rng, f"/item/{1 + i // 1500}/{i % 1500}", 1)
            aggregator.flip_request(old._replace(success=False, update=True))
        delta = wire.Delta.FromString(
            to_delta(aggregator.drain(), sequence, 2, False, ids).SerializeToString()
        )
        merge_delta(reference, delta, names)
        tables = decode(delta, keys)
        keys.enter(tables)  # what the manager's ledger does once the delta passes its checks
        totals.merge(delta, tables)
        if sequence % 3 == 0:  # a scrape mid-run, then more deltas on the same names
            assert totals.metrics() == reference
    assert len(reference.requests) > 12_000
    assert len(ids.requests) == len(keys.tables[0]) == len(reference.requests)
    assert totals.metrics() == reference


def reversed_rows(table: wire.Table) -> None:
    """Each row's histogram entries in reverse order, and its first one split in two: a delta
    no worker sends (its entries come sorted, each once) but whose numbers are still clear."""
    rows, indexes = values("I", table.bucket_rows), values("H", table.bucket_indexes)
    counts = values("I", table.bucket_counts)
    new_rows, new_indexes, new_counts = list[int](), list[int](), list[int]()
    start = 0
    for size in rows:
        chosen = slice(start, start + size)
        entries = list(zip(indexes[chosen], counts[chosen], strict=True))[::-1]
        start += size
        if entries and entries[0][1] > 1:
            index, count = entries.pop(0)
            entries[:0] = [(index, 1), (index, count - 1)]
        new_rows.append(len(entries))
        for index, count in entries:
            new_indexes.append(index)
            new_counts.append(count)
    table.bucket_rows = column("I", *new_rows)
    table.bucket_indexes = column("H", *new_indexes)
    table.bucket_counts = column("I", *new_counts)


def test_d3_a_rows_entries_fold_alike_in_any_order() -> None:
    rng = random.Random(4)
    totals, reference = Totals(), Metrics()
    for sequence in range(1, 4):
        aggregator = Aggregator()
        for _ in range(3000):
            aggregator.record_request(request(rng, f"/n/{rng.randrange(300)}"))
        delta = to_delta(aggregator.drain(), sequence, 1, False)
        reversed_rows(delta.requests)
        merge_delta(reference, delta)
        totals.merge(delta)
    assert totals.metrics() == reference


def test_d3_the_managers_totals_grow_with_what_they_hold() -> None:
    """4,000 names seen once each. A whole row per name (4,096 buckets and 1,000 status codes,
    40 KiB) took over 300 MB here; what they hold is a few cells and a ``Stats`` each."""
    rng = random.Random(5)
    deltas = []
    for sequence in range(1, 5):
        aggregator = Aggregator()
        for i in range(1000):
            aggregator.record_request(request(rng, f"/once/{sequence}/{i}"))
        deltas.append(to_delta(aggregator.drain(), sequence, 1, False))
    tracemalloc.start()
    try:
        totals = Totals()
        for delta in deltas:
            totals.merge(delta)
            totals.metrics()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(totals.metrics().requests) == 4000
    assert peak < 16 * 2**20, f"{peak / 2**20:.0f} MiB at the peak"


# --- a real gaggle ------------------------------------------------------------------------------
PATHS = '''
import itertools

from gaggle import TaskSet, constant, task

SENT = itertools.count()


class Paths(TaskSet):
    """Every request to a path of its own: its name (the path) is new each time."""

    wait_time = constant(0)

    @task
    async def a_new_path(self) -> None:
        await self.get(f"/status/200?user={self.user_index}&n={next(SENT)}")
'''
USERS, ITERATIONS = 20, 5000  # 100,000 requests, each a request name of its own
# The manager's peak RSS, measured on the 2-core test machine: 1.2 to 1.9 GB at 20,000 names
# with a whole row per name (its loop stalled and its workers left); 407 MiB at 100,000 with the
# JSON report's rows held at once; 249 MiB with them written one by one (benchmarks/many_names.py,
# where the 300 MB bar is measured); here, with the web app and live page on too, under
# the rest of the suite, up to 302 MiB. The bound guards against the gigabytes coming back.
PEAK_RSS = 400 * 2**20


def wait_for_exit(process: subprocess.Popen[str], timeout: float) -> tuple[int, int]:
    """Wait for a process we started, by its pid: (its exit code, its peak RSS in bytes)."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return process.returncode, usage.ru_maxrss * 1024  # Linux: kilobytes
        assert time.monotonic() < deadline, f"the manager still runs after {timeout} s"
        time.sleep(0.1)


@pytest.mark.timeout(600)  # 100,000 names take ~20 s quiet, minutes on a loaded machine
def test_d3_a_gaggle_counts_100000_request_names_exactly(target: Target, tmp_path: Path) -> None:
    test, port, report = write_test(tmp_path, PATHS), free_port(), tmp_path / "report.json"
    out, err = tmp_path / "manager.out", tmp_path / "manager.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        manager = subprocess.Popen(
            gaggle_command(
                "run", test, "--manager", "--expect-workers", "2", "--manager-bind-host",
                "127.0.0.1", "--manager-bind-port", str(port), "--host", target.url,
                "-u", str(USERS), "-r", "100", "--iterations", str(ITERATIONS), "-t", "480s",
                "--no-reset-metrics", "--only-summary", "-R", str(report),
                "--metrics-bind", f"127.0.0.1:{free_port()}",
            ),
            stdout=stdout, stderr=stderr, cwd=ROOT, text=True,
        )  # fmt: skip
    workers = []
    try:
        workers = [spawn_gaggle("run", test, "--worker", "--manager-port", str(port))
                   for _ in range(2)]  # fmt: skip
        # ~20 s on a quiet machine; the bounds only keep a hang from lasting (under stress-ng
        # and other tests 20,000 names took over 85 s)
        code, peak = wait_for_exit(manager, timeout=540)
        exits = [finish(worker, timeout=30) for worker in workers]
    finally:
        kill_leftovers(manager, *workers)
    manager_log = err.read_text()
    assert code == 0, manager_log[-3000:]
    data = json.loads(report.read_text())
    seen = {  # all at once: when one is wrong, the others say why
        "workers' exits": [c for c, _ in exits],
        "a worker lost": "lost worker" in manager_log or data["run"]["workers_lost"] != 0,
        "the manager lost": any("lost the manager" in log for _, log in exits),
        "stopped by": data["run"]["stopped_by"],
        "served": target.counts()["GET /status/200 200"],
        "counted": data["requests_total"]["count"],
        "names": len(data["requests"]),
        "peak RSS within the bound": peak <= PEAK_RSS,
    }
    assert seen == {
        "workers' exits": [0, 0],
        "a worker lost": False,
        "the manager lost": False,
        "stopped by": f"every user ran its {ITERATIONS} iteration(s)",
        "served": USERS * ITERATIONS,
        "counted": USERS * ITERATIONS,  # every request served, counted once
        "names": USERS * ITERATIONS,  # a name each
        "peak RSS within the bound": True,
    }, f"the manager's peak RSS: {peak / 2**20:.0f} MiB; its log:\n{manager_log[-2000:]}"
