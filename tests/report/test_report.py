"""-R/--report-file: the per-second timeline, one data model in two formats, bounded size, and
real runs (standalone and Gaggle mode) whose reports equal what the target served."""

from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path

import pytest

from gaggle import Attack, Default, TaskSet, constant, task
from gaggle.metrics.aggregate import Metrics
from gaggle.metrics.histogram import RELATIVE_ERROR
from gaggle.metrics.source import Source
from gaggle.metrics.stats import Stats
from gaggle.report.html import asset, render_html
from gaggle.report.model import RunFacts, build_report, plain, write_json
from gaggle.report.timeline import REQUEST_LIMIT, TOTAL_LIMIT, Series, Timeline
from tests.conftest import Target, run_gaggle, write_test

MIXED = """
from gaggle import TaskSet, task, constant

class Shopper(TaskSet):
    wait_time = constant(0.05)

    @task(weight=3)
    async def browse(self) -> None:
        await self.get("/a")

    @task
    async def broken(self) -> None:
        await self.get("/status/500")

    @task
    async def crash(self) -> None:
        raise RuntimeError("bad data")
"""


class Clock:
    """A clock the test moves: seconds for intervals, the same for instants."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def facts(**changes: object) -> RunFacts:
    values: dict[str, object] = {
        "command": "gaggle run test.py -R r.html",
        "hosts": ["http://127.0.0.1:1"],
        "users": 10,
        "hatch_rate": 2.0,
        "run_time": 3600.0,
        "reset_metrics": True,
        "started": 1_000_000.0,
        "ended": 1_003_600.0,
        "duration": 3595.0,
        "stopped_by": "run time elapsed",
        "workers": 0,
        "workers_lost": 0,
        "version": "0.1.0",
    }
    values.update(changes)
    return RunFacts(**values)  # type: ignore[arg-type]


# --- the timeline -------------------------------------------------------------------------------
def test_full_series_merge_pairwise_counts_add_percentiles_keep_the_slowest() -> None:
    series = Series(limit=4)
    samples = [(1, 10.0, 3), (2, 30.0, 4), (3, float("nan"), 5), (4, 5.0, 6), (5, 7.0, 7)]
    for second, (requests, p99, users) in enumerate(samples):
        series.add(100.0 + second, {("requests",): requests, ("p99_ms",): p99, ("users",): users})
    series.flush()
    # 4 points filled it: halved to 2 points of 2 samples; the 5th sample is a short point.
    assert series.step == 2
    assert list(series.time) == [100.0, 102.0, 104.0]
    assert series.column(("requests",)) == [3, 7, 5]
    assert series.column(("p99_ms",)) == [30, 5, 7]  # no data (NaN) loses to any value
    assert series.column(("users",)) == [4, 6, 7]
    assert series.column(("failures",)) == [0, 0, 0]  # never sampled: zeros, not missing


def test_each_point_takes_its_seconds_own_histogram() -> None:
    metrics, users, clock = Metrics(), [0], Clock()
    source = Source(metrics=lambda: metrics, users=lambda: users[0])
    timeline = Timeline(source, clock=clock, wall=clock)

    def second(values_us: list[int], fails: int = 0) -> None:
        stats = metrics.requests.setdefault(("GET", "/a"), Stats())
        for index, value in enumerate(values_us):
            stats.record(value, index >= fails, 200)
        clock.now += 1.0
        timeline.sample()

    second([])  # a manager waiting for its workers: not part of the timeline
    users[0] = 5
    second([1_000, 2_000, 3_000])
    second([50_000] * 99 + [400_000], fails=2)
    timeline.finish()
    totals = timeline.totals
    assert timeline.started == 1_000_001.0
    assert list(totals.time) == [1_000_001.0, 1_000_002.0, 1_000_003.0]
    assert totals.column(("requests",)) == [3, 100, 0]
    assert totals.column(("failures",)) == [0, 2, 0]
    assert totals.column(("users",)) == [5, 5, 5]
    p50, p99 = totals.column(("p50_ms",)), totals.column(("p99_ms",))
    assert p50[2] is None  # a second without requests has no percentile
    for got, exact in ((p50[0], 2.0), (p99[0], 3.0), (p50[1], 50.0), (p99[1], 50.0)):
        assert got is not None
        assert abs(got - exact) <= exact * RELATIVE_ERROR + 0.001
    by_request = timeline.requests.column(("GET", "/a", "requests"))
    assert by_request == [3, 100, 0]
    assert timeline.request_names == [("GET", "/a")]


def synthetic_hour(names: int = 200, seconds: int = 3600) -> Timeline:
    """An hour of per-second points for ``names`` requests, without an hour of load."""
    source = Source(metrics=Metrics, users=lambda: 0)
    timeline = Timeline(source)
    timeline.request_names = [("GET", f"/api/item/{n}/details") for n in range(names)]
    for second in range(seconds):
        at = 1_000_000.0 + second
        wave = 1 + (second % 60) / 60
        per_request: dict[tuple[str, ...], float] = {("seconds",): 1.0}
        for n, (method, name) in enumerate(timeline.request_names):
            per_request[(method, name, "requests")] = 17 + n % 13
            per_request[(method, name, "failures")] = int(second % 7 == 0)
            per_request[(method, name, "p50_ms")] = 12.345 * wave + n / 7
            per_request[(method, name, "p95_ms")] = 48.123 * wave + n / 7
            per_request[(method, name, "p99_ms")] = 97.531 * wave + n / 7
        timeline.requests.add(at, per_request)
        timeline.totals.add(
            at,
            {("seconds",): 1.0, ("requests",): 4321, ("failures",): 3, ("users",): 500,
             ("workers",): 0, ("p50_ms",): 12.345 * wave, ("p95_ms",): 48.123 * wave,
             ("p99_ms",): 97.531 * wave},
        )  # fmt: skip
    timeline.totals.flush()
    timeline.requests.flush()
    return timeline


def test_an_hour_with_200_request_names_stays_a_few_megabytes() -> None:
    timeline = synthetic_hour()
    metrics = Metrics()
    for method, name in timeline.request_names:
        metrics.requests[(method, name)] = Stats()
        metrics.requests[(method, name)].record(12_000, True, 200)
    data = build_report(facts(), metrics, [], timeline)
    as_json, as_html = json.dumps(data, separators=(",", ":"), default=plain), render_html(data)
    print(f"1 h × 200 names: JSON {len(as_json) / 1e6:.2f} MB, HTML {len(as_html) / 1e6:.2f} MB")
    assert len(as_html) < 3_000_000
    assert len(as_json) < len(as_html)
    points = data["timeline"]
    assert TOTAL_LIMIT // 2 <= len(points["time"]) <= TOTAL_LIMIT
    assert len(points["by_request"]["time"]) <= REQUEST_LIMIT
    assert len(points["by_request"]["series"]) == 200
    # downsampled honestly: counts keep their sum, rates their level
    assert sum(points["requests"]) == 4321 * 3600
    step = points["by_request"]["step"]
    first = points["by_request"]["series"][0]
    assert first["requests"][0] == 17 * step
    assert points["by_request"]["seconds"][0] == step


def test_the_json_report_written_row_by_row_is_what_one_dumps_call_writes() -> None:
    """-R streams the request rows (100,000 names made 135 MiB of dicts held at once): the file
    must be byte for byte what ``json.dumps`` of the whole report gives, odd names included."""
    metrics = Metrics()
    names = ["/a", '/"quoted"', "/back\\slash", "/ünï\u2028code", "/z", "/\n"]
    for i, name in enumerate(names):
        for method in ("GET", "POST"):
            stats = metrics.requests[(method, name)] = Stats()
            for time_us in range(1_000, 1_000 + 997 * (i + 1), 997):
                stats.record(time_us, time_us % 3 != 0, 200 + i)
    data = build_report(facts(), metrics, [], synthetic_hour(names=2, seconds=5))
    streamed = io.StringIO()
    write_json(data, streamed)
    assert streamed.getvalue() == json.dumps(data, separators=(",", ":"), default=plain)
    rows = json.loads(streamed.getvalue())["requests"]
    assert [(row["method"], row["name"]) for row in rows] == sorted(
        ((m, n) for n in names for m in ("GET", "POST")), key=lambda key: (key[1], key[0])
    )
    assert data["requests"][1] == rows[1]  # read by index, as the HTML tables and tests do
    assert data["requests"][-2:] == rows[-2:]


# --- the HTML file --------------------------------------------------------------------------------
def test_the_chart_library_ships_with_its_licence_and_version() -> None:
    version = asset("uPlot.version").strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    assert f"(v{version})" in asset("uPlot.iife.min.js")[:200]  # the build's own banner
    assert "MIT License" in asset("uPlot.LICENSE")


def test_the_html_report_needs_no_network_and_escapes_the_test_names() -> None:
    metrics = Metrics()
    metrics.requests[("GET", "</script><img src=x>")] = Stats()
    metrics.requests[("GET", "</script><img src=x>")].record(1000, True, 200)
    page = render_html(build_report(facts(), metrics, [], synthetic_hour(names=2, seconds=5)))
    assert "<img src=x>" not in page  # escaped in the table and in the embedded data
    tags = re.findall(r"<[a-z]+\s[^>]*>", page)
    urls = [
        u for tag in tags for u in re.findall(r"""\b(?:src|href)\s*=\s*["']?([^"'\s>]*)""", tag)
    ]
    assert urls == ["data:,"]  # the empty favicon, so the browser does not look for one
    assert "default-src 'none'" in page  # and the browser refuses any fetch anyway


# --- real runs ------------------------------------------------------------------------------------
def report_of(tmp_path: Path, target: Target, name: str, *args: str) -> dict[str, object]:
    path = tmp_path / name
    result = run_gaggle(
        "run", write_test(tmp_path, MIXED), "--host", target.url, "-R", str(path), *args
    )
    assert result.returncode == 0, result.stderr
    assert f"report written to {path}" in result.stderr
    if name.endswith(".json"):
        data: dict[str, object] = json.loads(path.read_text())
        return data
    return {"html": path.read_text()}


def check_against_target(data: dict[str, object], target: Target, users: int) -> None:
    served = target.counts()
    requests = {f"{r['method']} {r['name']}": r for r in data["requests"]}  # type: ignore[attr-defined]
    assert requests["GET /a"]["count"] == served["GET /a 200"]
    assert requests["GET /status/500"]["fails"] == served["GET /status/500 500"]
    assert requests["GET /status/500"]["status_codes"] == {"500": served["GET /status/500 500"]}
    timeline = data["timeline"]
    assert sum(timeline["requests"]) == sum(served.values())  # type: ignore[index]
    assert sum(timeline["failures"]) == served["GET /status/500 500"]  # type: ignore[index]
    assert max(timeline["users"]) == users  # type: ignore[index]
    errors = {e["error"]: e["count"] for e in data["errors"]["shown"]}  # type: ignore[index]
    assert errors["GET /status/500: status 500"] == served["GET /status/500 500"]
    assert any("RuntimeError: bad data" in error for error in errors)


def test_standalone_json_report_equals_what_the_target_served(
    target: Target, tmp_path: Path
) -> None:
    data = report_of(
        tmp_path, target, "r.json", "-u", "4", "-r", "20", "-t", "2", "--no-reset-metrics"
    )
    check_against_target(data, target, users=4)
    run: dict[str, object] = data["run"]  # type: ignore[assignment]
    assert (run["users"], run["hatch_rate"], run["run_time"]) == (4, 20, 2)
    assert (run["mode"], run["reset_metrics"]) == ("standalone", False)
    assert str(run["command"]).endswith(
        f"-R {tmp_path / 'r.json'} -u 4 -r 20 -t 2 --no-reset-metrics"
    )
    assert data["schema"] == "gaggle-report/1"
    assert {t["task"] for t in data["tasks"]} == {"browse", "broken", "crash"}  # type: ignore[attr-defined]


def test_the_manager_writes_the_report_from_merged_worker_data(
    target: Target, tmp_path: Path
) -> None:
    data = report_of(
        tmp_path, target, "r.json", "--processes", "2", "-u", "4", "-r", "20", "-t", "2",
        "--no-reset-metrics",
    )  # fmt: skip
    check_against_target(data, target, users=4)
    assert (data["run"]["workers"], data["run"]["workers_lost"]) == (2, 0)  # type: ignore[index]
    assert max(data["timeline"]["workers"]) == 2  # type: ignore[index]


def test_the_report_carries_the_threshold_verdicts(target: Target, tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    rules = ["requests(GET /a) > 0", "failures(GET /status/500) < 0", "p95(GET /nowhere) < 1"]
    result = run_gaggle(
        "run", write_test(tmp_path, MIXED), "--host", target.url, "-R", str(path), "-u", "2",
        "-r", "20", "-t", "1", "--no-reset-metrics", *(f"--threshold={rule}" for rule in rules),
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    data = json.loads(path.read_text())
    served = target.counts()
    assert data["verdict"] == "Failed"
    assert data["thresholds"] == [
        {"expression": rules[0], "passed": True, "observed": served["GET /a 200"], "limit": 0,
         "baseline": None},
        {"expression": rules[1], "passed": False, "observed": served["GET /status/500 500"],
         "limit": 0, "baseline": None},
        {"expression": rules[2], "passed": False, "observed": None, "limit": 1, "baseline": None},
    ]  # fmt: skip
    page = render_html(data)
    section = page[page.index("<h2>Thresholds: Failed</h2>") : page.index("<h2>Over time</h2>")]
    assert section.count('class="fail">FAILED') == 2
    assert section.count('class="pass">passed') == 1
    assert "never measured" in section


def test_a_report_without_thresholds_has_no_verdict() -> None:
    data = build_report(facts(), Metrics(), [], synthetic_hour(names=1, seconds=2))
    assert (data["thresholds"], data["verdict"]) == ([], None)
    assert "<h2>Thresholds" not in render_html(data)


def test_an_unwritable_report_stops_a_gaggle_before_it_starts(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run_gaggle(
        "run", write_test(tmp_path, MIXED), "--host", "http://127.0.0.1:9", "--processes", "2",
        "-t", "30", "-R", str(tmp_path / "missing" / "r.html"),
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "--report-file" in result.stderr
    assert "cannot write there" in result.stderr
    assert time.monotonic() - started < 15


def test_the_extension_picks_the_format_in_any_case(target: Target, tmp_path: Path) -> None:
    page = report_of(tmp_path, target, "r.HTM", "-u", "1", "-t", "1")["html"]
    assert str(page).startswith("<!DOCTYPE html>")


class Front(TaskSet):
    wait_time = constant(0.05)

    @task
    async def index(self) -> None:
        await self.get("/a")


def test_a_program_sets_the_report_like_any_option(target: Target, tmp_path: Path) -> None:
    path = tmp_path / "program.json"
    attack = Attack(Front).set_default(Default.REPORT_FILE, path)
    result = attack.run(host=target.url, users=2, hatch_rate=50, run_time=1)
    data = json.loads(path.read_text())
    assert data["requests"][0]["count"] == result.metrics.requests[("GET", "/a")].count
    assert sum(data["timeline"]["requests"]) == target.counts()["GET /a 200"]


def test_execute_refuses_an_unwritable_report_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing" / "r.json"
    with pytest.raises(SystemExit) as exit_info:
        Attack(Front).execute(["--host", "http://127.0.0.1:9", "-t", "1", "-R", str(missing)])
    assert exit_info.value.code == 2
    assert (
        f"--report-file: '{missing}' is not allowed; cannot write there" in capsys.readouterr().err
    )
