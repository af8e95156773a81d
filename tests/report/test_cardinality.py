"""Many request names (--request-names-limit): one warning that names the pattern and how to
group it, and tables, /metrics and the LoadTest status that show the busiest names plus one
``(other names)`` row summing the rest exactly, while the JSON report keeps every name. Unit tests
on real accumulators, and real runs (standalone and Gaggle mode, started with the CLI) against
the counting target."""

from __future__ import annotations

import io
import json
import logging
import random
import re
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from gaggle.metrics import (
    OTHER_NAMES,
    Aggregator,
    Ledger,
    Metrics,
    NameGuard,
    RequestRecord,
    Source,
    Stats,
    WatchedTally,
    busiest,
    name_pattern,
)
from gaggle.report import TableOptions, print_tables
from gaggle.report.tables import format_ms
from gaggle.run import RunResult
from gaggle.web.prometheus import MetricsPage
from gaggle_operator import status
from tests.conftest import (
    Target,
    finish,
    free_port,
    kill_leftovers,
    scrape,
    spawn_gaggle,
    wait_for_count,
    write_test,
)

WARNING = "distinct request names (--request-names-limit"


def record(rng: random.Random, name: str, method: str = "GET") -> RequestRecord:
    status = rng.choice((200, 200, 200, 404, 503, 0))
    elapsed_us = int(rng.lognormvariate(9, 1.5))  # ~8 ms, a wide spread
    return RequestRecord(
        0, method, name, name, name, False, elapsed_us, status, 0 < status < 400, False, 0,
        "" if status else "refused",
    )  # fmt: skip


def many_names(rng: random.Random) -> Metrics:
    """300 names of 1 to 60 requests each: ids in paths, and a few pages by hand."""
    aggregator = Aggregator()
    for i in range(300):
        for _ in range(1 + (i * 7919) % 60):
            aggregator.record_request(record(rng, f"/item/{i}"))
    for name in ("/", "/about", "/cart"):
        for _ in range(rng.randrange(1, 90)):
            aggregator.record_request(record(rng, name, "POST"))
    return aggregator.drain()


# --- the pattern and the warning ------------------------------------------------------------------
def test_guard_patterns_put_id_in_place_of_ids_and_keep_words() -> None:
    cases = {
        "/item/42": "/item/{id}",
        "/users/3f2a9c1e-7b4d-4e1a-9c2b-0a1b2c3d4e5f/orders": "/users/{id}/orders",
        "/blob/9f86d081884c7d65/raw": "/blob/{id}/raw",
        "/search?q=shoes&page=3&sid=0a1b2c3d4e": "/search?q=shoes&page={id}&sid={id}",
        "/about/deadbeefcafe": "/about/deadbeefcafe",  # hex letters only: a word
        "/v2/items/a1b2": "/v2/items/a1b2",  # too short to be hex id
        "/api/cafe?flag": "/api/cafe?flag",
        "login page": "login page",
        "http://127.0.0.1:8080/item/7": "http://127.0.0.1:8080/item/{id}",
    }
    assert {name: name_pattern(name) for name in cases} == cases


def test_guard_warns_once_naming_the_commonest_pattern_and_how_to_group_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    aggregator = Aggregator()
    ledger = Ledger(aggregator)
    tally = WatchedTally(ledger, NameGuard(100))
    rng = random.Random(1)
    for i in range(60):
        aggregator.record_request(record(rng, f"/user/{i}/profile", "POST"))
    caplog.set_level(logging.WARNING, logger="gaggle")
    assert len(tally.metrics().requests) == 60
    assert tally.guard.warning == ""  # 60 names: under the limit
    for i in range(90):
        aggregator.record_request(record(rng, f"/item/{i}"))
    tally.metrics()
    for i in range(90, 400):  # more names, more reads: nothing more is said
        aggregator.record_request(record(rng, f"/item/{i}"))
        tally.metrics()
    tally.reset()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("150 distinct request names (--request-names-limit 100): ")
    assert "GET /item/{id} seen with 90 paths" in warnings[0]
    assert 'self.get(f"/item/{id}", name="/item/{id}")' in warnings[0]
    assert f'fold the rest into "{OTHER_NAMES}"' in warnings[0]


def test_guard_a_method_without_a_shortcut_is_named_in_self_request() -> None:
    guard = NameGuard(3)
    guard.check({("PROPFIND", f"/dav/{i}"): Stats() for i in range(5)})
    assert "PROPFIND /dav/{id} seen with 5 paths" in guard.warning
    assert 'self.request("PROPFIND", f"/dav/{id}", name="/dav/{id}")' in guard.warning
    words = NameGuard(2)  # names that share no pattern: none to name, the advice still given
    words.check({("GET", name): Stats() for name in ("login", "cart", "home")})
    assert words.warning.startswith("3 distinct request names (--request-names-limit 2): ")
    assert "seen with" not in words.warning
    assert 'name="/item/{id}"' in words.warning


# --- the busiest names and the rest -------------------------------------------------------------
def test_guard_busiest_shows_the_top_n_and_sums_the_rest_exactly() -> None:
    metrics = many_names(random.Random(3))
    view = busiest(metrics.requests, 40)
    by_count = sorted(metrics.requests.items(), key=lambda r: (-r[1].count, r[0][1], r[0][0]))
    assert {key for key, _ in view.shown} == {key for key, _ in by_count[:40]}
    assert [key for key, _ in view.shown] == sorted(
        (key for key, _ in view.shown), key=lambda key: (key[1], key[0])
    )  # the tables' order: by name
    rest = Stats()
    for _, stats in by_count[40:]:
        rest.merge(stats)
    assert view.folded == len(metrics.requests) - 40
    assert view.other == rest  # counts, failures, sums, histogram and status codes
    assert view.other is not None
    assert sum(s.count for _, s in view.shown) + view.other.count == sum(
        s.count for s in metrics.requests.values()
    )
    whole = busiest(metrics.requests, len(metrics.requests))
    assert whole.other is None
    assert whole.folded == 0
    assert len(whole.shown) == 303


def table_rows(text: str, title: str) -> dict[str, list[str]]:
    """A printed table's rows by name (its first column), up to its Aggregated row."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(title))
    rows: dict[str, list[str]] = {}
    for line in lines[start + 3 :]:
        cells = re.split(r"\s{2,}", line.strip())
        if cells == [""] or set(line.strip()) <= {"─"}:
            continue
        rows[cells[0]] = cells[1:]
        if cells[0] == "Aggregated":
            return rows
    raise AssertionError(f"no Aggregated row under {title}:\n{text}")


def count_of(cells: list[str]) -> int:
    return int(cells[0].replace(",", ""))


def test_guard_the_tables_show_n_names_and_other_names_that_add_up() -> None:
    metrics = many_names(random.Random(4))
    printed = io.StringIO()
    options = TableOptions([], 10.0, status_codes=True, names_limit=25)
    print_tables(Console(file=printed, width=160, highlight=False), metrics, options)
    text = printed.getvalue()
    rows = table_rows(text, "PER REQUEST METRICS")
    other, total = rows.pop(OTHER_NAMES), rows.pop("Aggregated")
    assert len(rows) == 25
    assert sum(count_of(cells) for cells in rows.values()) + count_of(other) == count_of(total)
    assert count_of(total) == sum(s.count for s in metrics.requests.values())
    percentiles = table_rows(text, "PERCENTILES (ms)")
    view = busiest(metrics.requests, 25)
    assert view.other is not None
    assert percentiles[OTHER_NAMES][2] == format_ms(view.other.percentile_us(0.98))
    assert '"(other names)" sums 278 request names past the 25 busiest' in text
    unbounded = io.StringIO()  # 303 names: under the default limit
    print_tables(Console(file=unbounded, width=160, highlight=False), metrics, TableOptions([], 10))
    assert OTHER_NAMES not in unbounded.getvalue()


def series(page: str, family: str) -> list[tuple[dict[str, str], float]]:
    return [
        (sample.labels, sample.value)
        for metric in text_string_to_metric_families(page)
        if metric.name == family
        for sample in metric.samples
        if sample.name == family + "_total"
    ]


def test_guard_metrics_has_series_for_the_busiest_names_only() -> None:
    metrics = many_names(random.Random(5))
    source = Source(metrics=lambda: metrics, users=lambda: 1, names_limit=30)
    page = MetricsPage(source).render().decode()
    requests = series(page, "gaggle_requests")
    assert len({labels["name"] for labels, _ in requests}) == 31
    assert sum(value for _, value in requests) == sum(s.count for s in metrics.requests.values())
    other = [labels for labels, _ in requests if labels["name"] == OTHER_NAMES]
    assert other
    assert all(labels["method"] == "" for labels in other)
    latency = [
        sample
        for family in text_string_to_metric_families(page)
        if family.name == "gaggle_response_time_seconds"
        for sample in family.samples
        if sample.name.endswith("_count")
    ]
    assert len(latency) == 31


def test_guard_the_loadtest_status_names_the_busiest_and_sums_the_rest() -> None:
    metrics = many_names(random.Random(6))
    result = RunResult(metrics=metrics, duration=10.0, users=1, stopped_by="run time elapsed")
    rows = status.summary(result)["topRequests"]
    assert len(rows) == status.TOP_REQUESTS + 1
    other = rows[-1]
    assert other["name"] == OTHER_NAMES
    assert other["names"] == len(metrics.requests) - 10
    assert sum(row["requests"] for row in rows) == sum(s.count for s in metrics.requests.values())
    assert sum(row["failures"] for row in rows) == sum(
        s.fail_count for s in metrics.requests.values()
    )


# --- real runs ----------------------------------------------------------------------------------
PATHS = 2000
NEW_PATHS = f'''
import asyncio
import itertools

from gaggle import TaskSet, constant, task

SENT = itertools.count()


class Paths(TaskSet):
    """A path of its own per request (a query string the target ignores), {PATHS:,} in all;
    then idle until the test stops the run."""

    wait_time = constant(0)

    @task
    async def a_new_path(self) -> None:
        n = next(SENT)
        if n < {PATHS}:
            await self.get(f"/status/200?item={{self.user_index * 100_000 + n}}")
        else:
            await asyncio.sleep(0.05)
'''


def scrape_until(port: int, count: int, process: subprocess.Popen[str]) -> str:
    """/metrics once it has counted ``count`` requests (a response is counted after its body)."""
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, finish(process)[1][-3000:]
        try:
            page = scrape(port)
        except OSError:  # not listening yet
            page = ""
        if sum(value for _, value in series(page, "gaggle_requests")) >= count:
            return page
        assert time.monotonic() < deadline, f"/metrics never counted {count} requests:\n{page}"
        time.sleep(0.1)


def outputs(process: subprocess.Popen[str], timeout: float) -> tuple[int, str, str]:
    """Wait for a process we started (killed, by its handle, if it overstays): (code, out, err)."""
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        kill_leftovers(process)
    return process.returncode, out, err


def stop(port: int) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/stop",
        json.dumps({"reason": "the test is done"}).encode(),
        {"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def test_guard_a_run_of_2000_paths_warns_once_and_stays_readable(
    target: Target, tmp_path: Path
) -> None:
    test, port, report = write_test(tmp_path, NEW_PATHS), free_port(), tmp_path / "report.json"
    run = spawn_gaggle(
        "run", test, "--host", target.url, "-u", "4", "-r", "100", "-t", "120s",
        "--no-reset-metrics", "--only-summary", "--no-live", "--request-names-limit", "750",
        "--metrics-bind", f"127.0.0.1:{port}", "-R", str(report),
        env={"COLUMNS": "160"},
    )  # fmt: skip
    try:
        wait_for_count(target, "GET /status/200 200", PATHS, timeout=90)
        page = scrape_until(port, PATHS, run)
        stop(port)
        code, out, err = outputs(run, timeout=60)
    finally:
        kill_leftovers(run)
    assert code == 0, err[-3000:]
    # /metrics: 750 names and "(other names)", every request counted once
    requests = series(page, "gaggle_requests")
    assert len({labels["name"] for labels, _ in requests}) == 751
    assert sum(value for _, value in requests) == PATHS
    # one warning, naming the pattern and the paths it was seen with at the first read past 750
    assert err.count(WARNING) == 1, err[-3000:]
    found = re.search(
        r"([\d,]+) distinct request names .*: GET (\S+) seen with ([\d,]+) paths", err
    )
    assert found is not None, err[-3000:]
    names, pattern, paths = found.groups()
    assert pattern == "/status/{id}?item={id}"
    assert names == paths
    assert 750 < int(paths.replace(",", "")) <= PATHS
    assert 'self.get(f"/status/{id}?item={id}", name="/status/{id}?item={id}")' in err
    # the tables: the 750 busiest and "(other names)", adding up to every request
    rows = table_rows(out, "PER REQUEST METRICS")
    other, total = rows.pop(OTHER_NAMES), rows.pop("Aggregated")
    assert len(rows) == 750
    assert all(name.startswith("GET /status/200?item=") for name in rows)
    assert count_of(other) == PATHS - 750
    assert count_of(total) == PATHS
    assert f'"(other names)" sums {PATHS - 750:,} request names past the 750 busiest' in out
    # the JSON report keeps every name, and its totals are what the target served
    data = json.loads(report.read_text())
    assert len(data["requests"]) == PATHS
    assert data["requests_total"]["count"] == target.counts()["GET /status/200 200"] == PATHS


def test_guard_a_gaggles_manager_warns_once_and_its_workers_not_at_all(
    target: Target, tmp_path: Path
) -> None:
    test, port, report = write_test(tmp_path, NEW_PATHS), free_port(), tmp_path / "report.json"
    manager = spawn_gaggle(
        "run", test, "--manager", "--expect-workers", "2", "--manager-bind-host", "127.0.0.1",
        "--manager-bind-port", str(port), "--host", target.url, "-u", "4", "-r", "100",
        "--iterations", str(PATHS // 4), "-t", "120s", "--no-reset-metrics", "--only-summary",
        "--no-live", "--request-names-limit", "300", "-R", str(report),
        env={"COLUMNS": "160"},
    )  # fmt: skip
    workers: list[subprocess.Popen[str]] = []
    try:
        workers = [spawn_gaggle("run", test, "--worker", "--manager-port", str(port))
                   for _ in range(2)]  # fmt: skip
        code, out, err = outputs(manager, timeout=120)
        exits = [finish(worker, timeout=30) for worker in workers]
    finally:
        kill_leftovers(manager, *workers)
    assert code == 0, err[-3000:]
    served = target.counts()["GET /status/200 200"]
    seen = {
        "workers' exits": [c for c, _ in exits],
        "manager's warnings": err.count(WARNING),
        "workers' warnings": [e.count(WARNING) for _, e in exits],
        "names in the JSON": len(json.loads(report.read_text())["requests"]),
        "served": served,
    }
    assert seen == {
        "workers' exits": [0, 0],
        "manager's warnings": 1,
        "workers' warnings": [0, 0],
        "names in the JSON": PATHS,
        "served": PATHS,
    }, err[-3000:]
    assert "GET /status/{id}?item={id} seen with" in err
    rows = table_rows(out, "PER REQUEST METRICS")
    other, total = rows.pop(OTHER_NAMES), rows.pop("Aggregated")
    assert len(rows) == 300
    assert count_of(other) == PATHS - 300
    assert count_of(total) == PATHS


BAR = 100_000
EVERY_PATH_ITS_OWN = """
import itertools

from gaggle import TaskSet, constant, task

SENT = itertools.count()


class Paths(TaskSet):
    wait_time = constant(0)

    @task
    async def a_new_path(self) -> None:
        await self.get(f"/status/200?item={next(SENT)}")
"""


def test_guard_100000_names_standalone_are_counted_exactly_with_one_warning(
    target: Target, tmp_path: Path
) -> None:
    """The issue's bar, standalone (benchmarks/many_names.py measures it, and Gaggle mode's)."""
    test, report = write_test(tmp_path, EVERY_PATH_ITS_OWN), tmp_path / "report.json"
    run = spawn_gaggle(
        "run", test, "--host", target.url, "-u", "20", "-r", "1000", "--iterations",
        str(BAR // 20), "-t", "300s", "--no-reset-metrics", "--only-summary", "-R", str(report),
        env={"COLUMNS": "160"},
    )  # fmt: skip
    code, out, err = outputs(run, timeout=320)
    assert code == 0, err[-3000:]
    data = json.loads(report.read_text())
    rows = table_rows(out, "PER REQUEST METRICS")
    seen = {
        "stopped by": data["run"]["stopped_by"],
        "served": target.counts()["GET /status/200 200"],
        "counted": data["requests_total"]["count"],
        "names in the JSON": len(data["requests"]),
        "warnings": err.count(WARNING),
        "table rows": len(rows),
        "table total": count_of(rows["Aggregated"]),
    }
    assert seen == {
        "stopped by": f"every user ran its {BAR // 20} iteration(s)",
        "served": BAR,
        "counted": BAR,
        "names in the JSON": BAR,
        "warnings": 1,
        "table rows": 1000 + 2,  # the default limit's busiest, (other names) and Aggregated
        "table total": BAR,
    }, err[-3000:]
