"""--baseline: a previous run's JSON report read and checked (ours and Goose 0.19's), this run
compared with it (significance as README says), shown in the console, HTML and JSON reports — and
the done-means runs: a slowed target fails its regression rule (exit 3) against a baseline from
the fast one and the fast one passes again, standalone and in Gaggle mode (judged by the manager,
never read by a worker)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from gaggle.errors import ConfigError
from gaggle.metrics import Aggregator, Metrics, RequestRecord, Source
from gaggle.report.baseline import ALLOWED, GOOSE, SCHEMA, Baseline, Figures, load_baseline
from gaggle.report.comparison import compare
from gaggle.report.html import render_html
from gaggle.report.model import SCHEMA as MODEL_SCHEMA
from gaggle.report.model import RunFacts, build_report, plain, write_json
from gaggle.report.tables import TableOptions, print_tables
from gaggle.report.timeline import Timeline
from tests.conftest import ROOT, Target, finish, free_port, gaggle_command, write_test

# The same file makes every run here (one test file hash); the target's delay comes from the
# environment: the /slow endpoint sleeps that long before it answers.
SLOW = """
import os
from gaggle import TaskSet, task, constant

DELAY = os.environ.get("TARGET_DELAY_MS", "0")

class Checkout(TaskSet):
    wait_time = constant(0)

    @task
    async def slow(self) -> None:
        await self.get(f"/slow?ms={DELAY}", name="/slow")
"""

# --- data made here -----------------------------------------------------------------------------


def metrics_of(rows: dict[tuple[str, str], list[tuple[float, bool]]]) -> Metrics:
    """Metrics holding these (method, name) -> [(ms, ok)] requests, exactly."""
    aggregator = Aggregator()
    for (method, name), requests in rows.items():
        for elapsed, ok in requests:
            aggregator.record_request(
                RequestRecord(0, method, name, name, name, False, int(elapsed * 1000),
                              200 if ok else 500, ok, False, 0)
            )  # fmt: skip
    return aggregator.drain()


def facts(**changes: object) -> RunFacts:
    values: dict[str, Any] = {
        "command": "gaggle run t.py", "hosts": ["http://127.0.0.1:1"], "users": 2,
        "hatch_rate": 1.0, "run_time": 10.0, "reset_metrics": False, "started": 1_000_000.0,
        "ended": 1_000_010.0, "duration": 10.0, "stopped_by": "run time elapsed", "workers": 0,
        "workers_lost": 0, "version": "9.9.9", "test": ("t.py", "ab" * 32),
    }  # fmt: skip
    values.update(changes)
    return RunFacts(**values)


def report_data(metrics: Metrics, **changes: object) -> dict[str, Any]:
    timeline = Timeline(Source(metrics=Metrics, users=lambda: 0))
    return build_report(facts(**changes), metrics, [], timeline)


def write_report(path: Path, data: dict[str, Any]) -> str:
    with path.open("w") as file:
        write_json(data, file)
    return str(path)


def steady(ms: float, count: int, failed: int = 0) -> list[tuple[float, bool]]:
    return [(ms, i >= failed) for i in range(count)]


GOOSE_019 = {  # Goose 0.19's JSON report, as its ReportData serializes (trimmed to what we read)
    "raw_metrics": {"hash": 0, "duration": 10, "history": [
        {"action": "Increasing", "timestamp": "2025-05-01T10:00:00Z", "users": 0}]},
    "raw_request_metrics": [
        {"method": "GET", "name": "/", "number_of_requests": 200, "number_of_failures": 2,
         "response_time_average": 12.5, "response_time_minimum": 3, "response_time_maximum": 90,
         "requests_per_second": 20.0, "failures_per_second": 0.2},
        {"method": "GET", "name": "/gone", "number_of_requests": 10, "number_of_failures": 0,
         "response_time_average": None, "response_time_minimum": 0, "response_time_maximum": 0,
         "requests_per_second": "1.00", "failures_per_second": "0.00"},
        {"method": "", "name": "Aggregated", "number_of_requests": 210, "number_of_failures": 2,
         "response_time_average": 12.0, "response_time_minimum": 3, "response_time_maximum": 90,
         "requests_per_second": 21.0, "failures_per_second": 0.2},
    ],
    "raw_response_metrics": [
        {"method": "GET", "name": "/", "percentile_50": 11, "percentile_60": 12,
         "percentile_70": 13, "percentile_80": 14, "percentile_90": 30, "percentile_95": 40,
         "percentile_99": 80, "percentile_100": 90},
        {"method": "", "name": "Aggregated", "percentile_50": 11, "percentile_60": 12,
         "percentile_70": 13, "percentile_80": 14, "percentile_90": 30, "percentile_95": 40,
         "percentile_99": 80, "percentile_100": 90},
    ],
    "co_request_metrics": None, "co_response_metrics": None, "scenario_metrics": None,
    "transaction_metrics": None, "status_code_metrics": None, "errors": None,
}  # fmt: skip


# --- reading a baseline -------------------------------------------------------------------------


def test_our_report_reads_back_as_the_baseline_it_describes(tmp_path: Path) -> None:
    metrics = metrics_of(
        {("GET", "/"): steady(10, 100, failed=4), ("POST", "/login"): steady(50, 20)}
    )
    path = write_report(tmp_path / "base.json", report_data(metrics))
    baseline = load_baseline(path)
    assert (baseline.path, baseline.kind, baseline.version) == (path, "gaggle", "9.9.9")
    assert (baseline.test_file, baseline.test_hash) == ("t.py", "ab" * 32)
    assert baseline.started == "1970-01-12T13:46:40.000+00:00"
    assert list(baseline.requests) == [("GET", "/"), ("POST", "/login")]  # the report's order
    root = baseline.requests[("GET", "/")]
    assert (root.count, root.fails, root.rps, root.fail_ratio) == (100, 4, 10.0, 0.04)
    assert root.times["p95"] == pytest.approx(10.0, rel=0.005)
    values = baseline.values  # what the regression rules read: plain (request, metric) keys
    assert values[(None, "requests")] == 120.0
    assert values[("POST /login", "p99.9")] == pytest.approx(50.0, rel=0.005)
    assert values.get(("GET /nope", "p95")) is None
    assert values.get(("GET /", "loopLag")) is None
    assert len(values) == 3 * 12  # all requests, two names: 12 metrics each
    assert (None, "failRatio") in values


def test_the_schema_read_is_the_schema_written() -> None:
    assert SCHEMA == MODEL_SCHEMA


def test_a_goose_019_report_is_a_baseline_too(tmp_path: Path) -> None:
    path = tmp_path / "goose.json"
    path.write_text(json.dumps(GOOSE_019))
    baseline = load_baseline(str(path))
    assert (baseline.kind, baseline.test_hash, baseline.version) == (GOOSE, None, None)
    assert baseline.started == "2025-05-01T10:00:00Z"
    assert list(baseline.requests) == [("GET", "/"), ("GET", "/gone")]  # Aggregated apart
    assert baseline.requests[("GET", "/")] == Figures(
        200, 2, 20.0,
        {"avg": 12.5, "min": 3.0, "max": 90.0, "p50": 11.0, "p90": 30.0, "p95": 40.0, "p99": 80.0},
    )  # fmt: skip
    gone = baseline.requests[("GET", "/gone")]  # a string rate (older Goose), a null average
    assert (gone.rps, "avg" in gone.times, "p95" in gone.times) == (1.0, False, False)
    assert (baseline.aggregate.count, baseline.aggregate.times["p95"]) == (210, 40.0)
    assert baseline.values.get((None, "p99.9")) is None  # Goose has none: "no baseline value"


BAD_FILES = [
    # (file name, content or None for no file, words the message must contain)
    ("missing.json", None, "cannot be read (No such file or directory)"),
    ("folder", "DIR", "cannot be read (Is a directory)"),
    ("half.json", '{"schema": "gaggle-report/1", "requests": [', "is not JSON ("),
    ("binary.json", b"\xff\xfe\x00", "is not JSON (not UTF-8 text)"),
    ("list.json", "[1, 2]", "is JSON but not a report (not an object)"),
    ("other.json", '{"hello": 1}', "no 'schema', no 'raw_request_metrics'"),
    ("future.json", '{"schema": "gaggle-report/9"}', "has schema 'gaggle-report/9'"),
    ("norows.json", '{"schema": "gaggle-report/1"}', "has no 'requests' list"),
    ("goose.json", '{"raw_request_metrics": [{"method": "GET", "name": "/", '
     '"number_of_requests": "many"}]}', "raw_request_metrics[0].number_of_requests = 'many'"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "content", "words"), BAD_FILES)
def test_a_bad_baseline_file_is_refused_naming_the_option_the_path_and_what_is_allowed(
    tmp_path: Path, name: str, content: str | bytes | None, words: str
) -> None:
    path = tmp_path / name
    if content == "DIR":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_baseline(str(path))
    message = str(caught.value)
    assert message.startswith(f"--baseline: {str(path)!r} ")
    assert words in message
    assert message.endswith(ALLOWED)
    assert (caught.value.option, caught.value.value) == ("--baseline", str(path))


@pytest.mark.parametrize(
    ("change", "words"),
    [({"count": -1}, "requests[0].count = -1, not a count"),
     ({"count": 1.5}, "requests[0].count = 1.5, not a count"),
     ({"fails": 99}, "says requests[0] failed 99 of 10 requests"),
     ({"p95_ms": None}, "requests[0].p95_ms = None, not a number"),
     ({"rps": "fast"}, "requests[0].rps = 'fast', not a number"),
     ({"name": 7}, "has no text requests[0].name")],
)  # fmt: skip
def test_a_report_row_without_its_numbers_is_refused(
    tmp_path: Path, change: dict[str, object], words: str
) -> None:
    made = report_data(metrics_of({("GET", "/"): steady(5, 10)}))
    data = json.loads(json.dumps(made, default=plain))
    data["requests"][0].update(change)
    path = tmp_path / "base.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as caught:
        load_baseline(str(path))
    assert words in str(caught.value)


# --- comparing ----------------------------------------------------------------------------------


def baseline_of(
    tmp_path: Path, rows: dict[tuple[str, str], list[tuple[float, bool]]], **changes: object
) -> Baseline:
    """The baseline a report of these requests reads as."""
    path = write_report(tmp_path / "base.json", report_data(metrics_of(rows), **changes))
    return load_baseline(path)


def test_a_percentile_change_inside_the_bound_or_the_noise_is_not_significant(
    tmp_path: Path,
) -> None:
    baseline = baseline_of(tmp_path, {("GET", "/"): steady(100, 600)})
    cases = {  # this run's time of every request -> whether p50/p95/p99 changed significantly
        100.5: False,  # +0.5 %: inside two histograms' bound
        104.0: False,  # +4 %: beyond the bound, not beyond 5 %
        106.0: True,  # +6 %: beyond both
        80.0: True,  # -20 %: a change either way
    }
    for ms, significant in cases.items():
        compared = compare(baseline, metrics_of({("GET", "/"): steady(ms, 600)}), 10.0, None)
        changes = compared["aggregate"]
        assert [changes[f]["significant"] for f in ("p50_ms", "p95_ms", "p99_ms")] == [
            significant
        ] * 3, ms
        assert changes["p95_ms"]["relative"] == pytest.approx(ms / 100 - 1, abs=0.01)


def test_a_tail_of_too_few_requests_is_not_a_trend(tmp_path: Path) -> None:
    """p99 needs 5 requests beyond it in each run (500), p95 100, p50 10."""
    baseline = baseline_of(tmp_path, {("GET", "/"): steady(100, 200)})
    compared = compare(baseline, metrics_of({("GET", "/"): steady(300, 200)}), 10.0, None)
    changes = compared["aggregate"]
    assert [changes[f]["significant"] for f in ("p50_ms", "p95_ms", "p99_ms")] == [
        True, True, False
    ]  # fmt: skip
    few = compare(baseline, metrics_of({("GET", "/"): steady(300, 9)}), 10.0, None)
    assert not any(few["aggregate"][f]["significant"] for f in ("p50_ms", "p95_ms", "p99_ms"))


def test_failures_change_significantly_by_a_two_proportion_z_test(tmp_path: Path) -> None:
    baseline = baseline_of(tmp_path, {("GET", "/"): steady(10, 1000, failed=10)})  # 1 %

    def fail_change(failed: int) -> dict[str, Any]:
        now = metrics_of({("GET", "/"): steady(10, 1000, failed=failed)})
        changes: dict[str, Any] = compare(baseline, now, 10.0, None)["aggregate"]["fail_percent"]
        return changes

    assert fail_change(15) == {  # z ≈ 1.0: chance
        "baseline": 1.0, "current": 1.5, "change": 0.5, "relative": 0.5, "significant": False
    }  # fmt: skip
    assert fail_change(30)["significant"]  # z ≈ 3.2
    assert not fail_change(10)["significant"]


def test_count_and_rate_change_significantly_beyond_five_percent(tmp_path: Path) -> None:
    baseline = baseline_of(tmp_path, {("GET", "/"): steady(10, 1000)})  # 100 req/s over 10 s
    near = compare(baseline, metrics_of({("GET", "/"): steady(10, 1040)}), 10.0, None)
    far = compare(baseline, metrics_of({("GET", "/"): steady(10, 1060)}), 10.0, None)
    significant = [c["aggregate"]["count"]["significant"] for c in (near, far)]
    assert significant == [False, True]
    assert near["aggregate"]["rps"] == {
        "baseline": 100.0, "current": 104.0, "change": 4.0, "relative": 0.04, "significant": False
    }  # fmt: skip
    slower = compare(baseline, metrics_of({("GET", "/"): steady(10, 1000)}), 12.0, None)
    assert slower["aggregate"]["rps"]["significant"]  # the same count over longer: -16.7 %


def test_requests_in_one_run_only_and_another_test_file_are_said_plainly(
    tmp_path: Path,
) -> None:
    baseline = baseline_of(
        tmp_path, {("GET", "/"): steady(10, 50), ("GET", "/gone"): steady(10, 5)},
        test=("old.py", "11" * 32),
    )  # fmt: skip
    now = metrics_of({("GET", "/"): steady(10, 50), ("GET", "/new"): steady(10, 5)})
    compared = compare(baseline, now, 10.0, ("new.py", "22" * 32))
    assert set(compared) == {
        "file", "started", "version", "same_test", "notes", "aggregate", "requests",
        "only_here", "only_in_baseline",
    }  # fmt: skip
    assert (compared["only_here"], compared["only_in_baseline"]) == (["GET /new"], ["GET /gone"])
    assert [(r["method"], r["name"]) for r in compared["requests"]] == [("GET", "/")]
    assert set(compared["requests"][0]["changes"]) == set(compared["aggregate"]) == {
        "count", "rps", "fail_percent", "p50_ms", "p95_ms", "p99_ms"
    }  # fmt: skip
    assert compared["same_test"] is False
    notes = "\n".join(compared["notes"])
    assert "another test file: old.py (sha256 111111111111…), this run new.py" in notes
    assert "1 request(s) of this run are not in the baseline: GET /new." in notes
    assert "1 request(s) of the baseline were not made in this run: GET /gone." in notes
    same = compare(baseline, metrics_of({("GET", "/"): steady(10, 50)}), 10.0, ("x.py", "11" * 32))
    assert same["same_test"] is True


def test_a_goose_baseline_cannot_say_the_test_and_rounds_its_times(tmp_path: Path) -> None:
    path = tmp_path / "goose.json"
    path.write_text(json.dumps(GOOSE_019))
    baseline = load_baseline(str(path))
    compared = compare(
        baseline, metrics_of({("GET", "/"): steady(40.9, 200, failed=2)}), 10.0, ("t.py", "0")
    )
    assert compared["same_test"] is None
    assert any("Goose report" in note for note in compared["notes"])
    p95 = compared["requests"][0]["changes"]["p95_ms"]  # 40 -> 40.9: inside Goose's 1 ms
    assert (p95["baseline"], p95["significant"]) == (40.0, False)
    assert compared["only_in_baseline"] == ["GET /gone"]


# --- where it shows -----------------------------------------------------------------------------


def test_the_console_compares_after_the_request_tables_and_the_reports_carry_it(
    tmp_path: Path,
) -> None:
    baseline = baseline_of(tmp_path, {("GET", "/<b>|x"): steady(100, 200)})
    now = metrics_of({("GET", "/<b>|x"): steady(300, 200), ("GET", "/new"): steady(1, 3)})
    out = io.StringIO()
    options = TableOptions([], 10.0, baseline=baseline, test=("t.py", "ab" * 32))
    print_tables(Console(file=out, width=140, highlight=False), now, options)
    text = out.getvalue()
    assert text.index("PERCENTILES (ms)") < text.index("COMPARED WITH BASELINE") < len(text)
    table = text[text.index("COMPARED WITH BASELINE") :]
    assert "GET /<b>|x" in table
    assert "+200.0%*" in table  # p50, p95: tripled, significant
    assert "1 request(s) of this run are not in the baseline: GET /new." in table
    data = report_data(now)
    assert "baseline" not in data  # without --baseline: no key at all
    data = build_report(
        facts(), now, [], Timeline(Source(metrics=Metrics, users=lambda: 0)), (), baseline
    )
    assert data["baseline"]["aggregate"]["p95_ms"]["significant"] is True
    assert data["baseline"]["same_test"] is True
    page = render_html(data)
    section = page[page.index("<h2>Compared with baseline</h2>") : page.index("<h2>Tasks</h2>")]
    assert "GET /&lt;b&gt;|x" in section  # a name is escaped
    assert "<b>|x" not in section
    assert section.count('class="delta sig">+200.0%') == 4  # p50 and p95, request and total
    assert "a run of the same test file" in section


def test_the_console_shows_the_busiest_names_when_there_are_many(tmp_path: Path) -> None:
    rows = {("GET", f"/item/{n}"): steady(10, 1 + n) for n in range(30)}
    baseline = baseline_of(tmp_path, rows)
    out = io.StringIO()
    options = TableOptions([], 10.0, names_limit=5, baseline=baseline)
    print_tables(Console(file=out, width=140, highlight=False), metrics_of(rows), options)
    table = out.getvalue()[out.getvalue().index("COMPARED WITH BASELINE") :]
    assert [n for n in range(30) if f"GET /item/{n} " in table] == [25, 26, 27, 28, 29]
    assert "25 more request(s) are compared in the JSON and HTML reports" in table


# --- real runs ----------------------------------------------------------------------------------

FAST_MS, SLOW_MS = 100, 300  # the target's delay; the rule allows 50 % more than the baseline
RULE = "p95 < baseline + 50%"
USERS, ITERATIONS = 8, 15  # 120 requests: enough for a p95 change to count (100)


def run_against(
    target: Target, test: str, delay_ms: int, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    target.reset()
    env = {**os.environ, "TARGET_DELAY_MS": str(delay_ms), "COLUMNS": "160"}
    command = gaggle_command(
        "run", test, "--host", target.url, "-u", str(USERS), "-r", "100", "--iterations",
        str(ITERATIONS), "--no-reset-metrics", "--only-summary", "--no-task-metrics", *args,
    )  # fmt: skip
    return subprocess.run(
        command, capture_output=True, text=True, timeout=90, env=env, cwd=cwd or ROOT
    )


def test_a_slowed_target_fails_its_regression_rule_and_the_fast_one_passes_again(
    target: Target, tmp_path: Path
) -> None:
    test = write_test(tmp_path, SLOW)
    base = tmp_path / "base.json"
    first = run_against(target, test, FAST_MS, "-R", str(base))
    assert first.returncode == 0, first.stderr
    base_data = json.loads(base.read_text())
    digest = hashlib.sha256(Path(test).read_bytes()).hexdigest()
    assert (base_data["run"]["test_file"], base_data["run"]["test_hash"]) == ("loadtest.py", digest)
    assert base_data["requests_total"]["count"] == target.counts()["GET /slow 200"] == 120

    slow = tmp_path / "slow.json"
    second = run_against(
        target, test, SLOW_MS, "-R", str(slow), "--baseline", str(base), "--threshold", RULE
    )
    assert second.returncode == 3, second.stderr
    data = json.loads(slow.read_text())
    assert data["requests_total"]["count"] == target.counts()["GET /slow 200"] == 120
    (rule,) = data["thresholds"]
    base_p95 = base_data["requests_total"]["p95_ms"]
    assert (rule["expression"], rule["passed"], rule["baseline"]) == (RULE, False, base_p95)
    assert rule["limit"] == pytest.approx(base_p95 * 1.5, abs=1e-5)
    assert rule["observed"] > rule["limit"]
    compared = data["baseline"]
    assert (compared["file"], compared["same_test"], compared["notes"]) == (str(base), True, [])
    assert compared["started"] == base_data["run"]["started"]
    for changes in (compared["aggregate"], compared["requests"][0]["changes"]):
        p95 = changes["p95_ms"]
        assert p95["significant"] is True
        assert (p95["baseline"], p95["current"]) == (base_p95, data["requests_total"]["p95_ms"])
        assert p95["relative"] > 0.5
        assert changes["count"] == {
            "baseline": 120.0, "current": 120.0, "change": 0.0, "relative": 0.0,
            "significant": False,
        }  # fmt: skip
    assert "COMPARED WITH BASELINE" in second.stdout
    assert f"threshold failed: {RULE}" in second.stderr

    third = run_against(target, test, FAST_MS, "--baseline", str(base), "--threshold", RULE)
    assert third.returncode == 0, third.stdout + third.stderr
    assert target.counts()["GET /slow 200"] == 120
    assert "passed" in third.stdout
    assert "FAILED" not in third.stdout


OTHER = (
    SLOW
    + """
    @task
    async def about(self) -> None:
        await self.get("/about/")
"""
)


def test_a_missing_request_and_another_test_file_are_said_not_failed(
    target: Target, tmp_path: Path
) -> None:
    base = tmp_path / "base.json"
    first = run_against(target, write_test(tmp_path, SLOW, "old.py"), 0, "-R", str(base))
    assert first.returncode == 0, first.stderr
    report = tmp_path / "new.json"
    rules = ["p95(GET /about/) < baseline + 10%", "requests(GET /slow) > baseline - 100%"]
    second = run_against(
        target, write_test(tmp_path, OTHER, "new.py"), 0, "-R", str(report),
        "--baseline", str(base), *(f"--threshold={rule}" for rule in rules),
    )  # fmt: skip
    assert second.returncode == 0, second.stderr
    data = json.loads(report.read_text())
    about, slow = data["thresholds"]
    assert (about["passed"], about["limit"], about["baseline"]) == (True, None, None)
    assert about["observed"] is not None  # made now: observed, not judged
    assert (slow["passed"], slow["baseline"]) == (True, 120)
    assert "no baseline value" in second.stdout  # the THRESHOLDS table says it
    assert f"threshold {rules[0]}: no baseline value" in second.stderr  # and a warning line
    compared = data["baseline"]
    assert (compared["same_test"], compared["only_here"]) == (False, ["GET /about/"])
    assert "The baseline ran another test file: old.py" in compared["notes"][0]
    served = target.counts()
    counts = {f"{r['method']} {r['name']}": r["count"] for r in data["requests"]}
    assert counts == {
        "GET /slow": served["GET /slow 200"],
        "GET /about/": served["GET /about/ 200"],
    }


@pytest.mark.parametrize(("content", "words"), [(None, "cannot be read"), ("{", "is not JSON")])
def test_a_bad_baseline_exits_2_before_any_load(
    target: Target, tmp_path: Path, content: str | None, words: str
) -> None:
    base = tmp_path / "base.json"
    if content is not None:
        base.write_text(content)
    result = run_against(
        target, write_test(tmp_path, SLOW), 0, "--baseline", str(base), "--threshold", RULE
    )
    assert result.returncode == 2, result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith(f"gaggle: error: --baseline: {str(base)!r} {words}")
    assert "a previous run's JSON report" in message
    assert target.counts() == {}  # refused before the first request


def test_a_regression_rule_without_a_baseline_exits_2(target: Target, tmp_path: Path) -> None:
    result = run_against(target, write_test(tmp_path, SLOW), 0, "--threshold", RULE)
    assert result.returncode == 2, result.stderr
    assert "--threshold 'p95 < baseline + 50%' compares with a baseline" in result.stderr
    assert "--baseline FILE" in result.stderr
    assert target.counts() == {}


def test_the_manager_judges_the_regression_rule_and_its_worker_never_reads_the_file(
    target: Target, tmp_path: Path
) -> None:
    """A manager and a worker, each in a folder of its own: the baseline's relative path exists
    only beside the manager, so a worker that read it would refuse to start (exit 2)."""
    manager_dir, worker_dir = tmp_path / "manager", tmp_path / "worker"
    manager_dir.mkdir()
    worker_dir.mkdir()
    test = write_test(tmp_path, SLOW)
    base_metrics = metrics_of({("GET", "/slow"): steady(FAST_MS, 120)})
    write_report(manager_dir / "base.json", report_data(base_metrics))  # a fast run's report
    port = free_port()
    env = {**os.environ, "TARGET_DELAY_MS": str(SLOW_MS), "COLUMNS": "160"}
    target.reset()
    command = gaggle_command(
        "run", test, "--manager", "--expect-workers", "1", "--manager-bind-host", "127.0.0.1",
        "--manager-bind-port", str(port), "--metrics-bind", f"127.0.0.1:{free_port()}",
        "--host", target.url, "-u", str(USERS), "-r", "100", "--iterations", str(ITERATIONS),
        "--no-reset-metrics", "--only-summary", "--baseline", "base.json", "--threshold", RULE,
        "-R", "slow.json",
    )  # fmt: skip
    manager = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=manager_dir, env=env
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "gaggle", "run", test, "--worker", "--manager-port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=worker_dir, env=env,
    )  # fmt: skip
    worker_code, worker_err = finish(worker, timeout=60)
    manager_out, manager_err = manager.communicate(timeout=60)
    assert worker_code == 0, worker_err
    assert manager.returncode == 3, manager_err
    assert "COMPARED WITH BASELINE (base.json" in manager_out
    assert f"threshold failed: {RULE}" in manager_err
    data = json.loads((manager_dir / "slow.json").read_text())
    assert data["run"]["workers"] == 1
    (rule,) = data["thresholds"]
    assert (rule["passed"], rule["baseline"]) == (False, pytest.approx(FAST_MS, rel=0.005))
    assert data["baseline"]["aggregate"]["p95_ms"]["significant"] is True
    assert data["requests_total"]["count"] == target.counts()["GET /slow 200"] == 120


def test_the_operators_manager_refuses_a_bad_baseline_with_exit_2(tmp_path: Path) -> None:
    """``gaggle-operator manage ... --baseline F``: read before the run, like ``gaggle run``."""
    test = write_test(tmp_path, SLOW)
    result = subprocess.run(
        [sys.executable, "-m", "gaggle_operator", "manage", "--loadtest", "lt", "--namespace",
         "ns", "--", "run", test, "--manager", "--expect-workers", "1", "--host",
         "http://127.0.0.1:9", "--manager-bind-port", str(free_port()), "--metrics-bind",
         f"127.0.0.1:{free_port()}", "--baseline", str(tmp_path / "none.json"),
         "--threshold", RULE],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("gaggle-operator manage: error: --baseline: ")
    assert "none.json' cannot be read" in message
