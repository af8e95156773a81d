"""-R report.md and -R junit.xml: the reports CI systems read, from the same data as the JSON.

Real runs (standalone and Gaggle mode) write all three at once; the Markdown is read back with a
CommonMark parser with GitHub's tables (markdown-it-py, what rich renders Markdown with), the
JUnit XML is validated against the Jenkins xUnit plugin's JUnit schema (tests/report/schemas).
Hostile names and a baseline section are built by hand in the report's data shape.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from markdown_it import MarkdownIt
from markdown_it.token import Token

from gaggle.metrics.aggregate import Metrics
from gaggle.metrics.source import Source
from gaggle.metrics.stats import Stats
from gaggle.report import render_junit, render_markdown
from gaggle.report.markdown import MAX_BYTES, NAME_CHARS
from gaggle.report.model import RunFacts, build_report
from gaggle.report.timeline import Timeline
from tests.conftest import Target, run_gaggle, write_test

SCHEMA = xmlschema.XMLSchema(Path(__file__).parent / "schemas" / "junit-10.xsd")
PARSER = MarkdownIt("commonmark").enable("table").enable("strikethrough")

TEST = """
from gaggle import TaskSet, task, constant

class Shopper(TaskSet):
    wait_time = constant(0.05)

    @task(weight=3)
    async def browse(self) -> None:
        await self.get("/a")

    @task
    async def broken(self) -> None:
        await self.get("/status/500")
"""
PASSING, FAILING = "requests(GET /a) > 0", "failures(GET /status/500) < 1"


# --- reading the files back -----------------------------------------------------------------------
def tables(markdown: str) -> dict[str, list[list[str]]]:
    """Each table under a ``###`` heading, by the heading's text: its rows (header first) as
    the cells' plain text, as a CommonMark + GitHub tables parser reads them."""
    found: dict[str, list[list[str]]] = {}
    heading, rows, row = "", list[list[str]](), list[str]()
    tokens = PARSER.parse(markdown)
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            heading = tokens[index + 1].content
        elif token.type == "table_open":
            rows = found.setdefault(heading, [])
        elif token.type == "tr_open":
            row = []
            rows.append(row)
        elif token.type == "inline" and tokens[index - 1].type in ("th_open", "td_open"):
            row.append(text_of(token))
    return found


def text_of(token: Token) -> str:
    """What a reader sees of an inline token: its text, no markup."""
    parts = []
    for child in token.children or []:
        assert child.type not in ("html_inline", "link_open", "image"), child
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
    return "".join(parts)


def html_of(markdown: str) -> list[Token]:
    return [t for t in PARSER.parse(markdown) if t.type == "html_block"]


def junit(path: Path) -> ET.Element:
    SCHEMA.validate(str(path))  # raises with the reason when the file is not valid
    return ET.parse(path).getroot()


def cases(root: ET.Element) -> dict[str, ET.Element]:
    return {case.attrib["name"]: case for case in root.iter("testcase")}


# --- real runs ------------------------------------------------------------------------------------
def run_with_reports(
    tmp_path: Path, target: Target, *args: str
) -> tuple[str, Path, dict[str, Any]]:
    md, xml, report = tmp_path / "r.md", tmp_path / "r.xml", tmp_path / "r.json"
    result = run_gaggle(
        "run", write_test(tmp_path, TEST), "--host", target.url, "-R", str(md), "-R", str(xml),
        "-R", str(report), "-u", "3", "-r", "30", "-t", "1", "--no-reset-metrics", *args,
    )  # fmt: skip
    assert result.returncode == (3 if any(FAILING in a for a in args) else 0), result.stderr
    for path in (md, xml, report):
        assert f"report written to {path}" in result.stderr
    return md.read_text(), xml, json.loads(report.read_text())


def check_requests(markdown: str, data: dict[str, Any], target: Target) -> None:
    """The Markdown's request rows equal the JSON's, which equal what the target served."""
    served = target.counts()
    table = next(rows for title, rows in tables(markdown).items() if title.startswith("Requests"))
    assert table[0][:3] == ["Request", "Requests", "Fails"]
    counts = {row[0]: int(row[1].replace(",", "")) for row in table[1:]}
    from_json = {f"{r['method']} {r['name']}": r["count"] for r in data["requests"]}
    assert counts == {**from_json, "Aggregated": data["requests_total"]["count"]}
    assert counts["GET /a"] == served["GET /a 200"] > 0
    assert counts["GET /status/500"] == served["GET /status/500 500"] > 0
    assert counts["Aggregated"] == sum(served.values())


def test_a_run_writes_markdown_and_junit_that_agree_with_its_json(
    target: Target, tmp_path: Path
) -> None:
    rules = (f"--threshold={PASSING}", f"--threshold={FAILING}")
    markdown, xml, data = run_with_reports(tmp_path, target, *rules)
    failures = target.counts()["GET /status/500 500"]
    # Markdown: the verdict first, the rules with what was observed, the requests, the errors
    heading = r"## ❌ Failed \(1 of 2 rules\) · run time elapsed after \d+\.\d s · 3 users · "
    assert re.match(heading, markdown)
    assert f" · {data['requests_total']['count']:,} requests · " in markdown.splitlines()[0]
    rules_table = tables(markdown)["Thresholds and regression rules"]
    assert rules_table[0] == ["Rule", "Observed", "Limit", "Result"]
    assert rules_table[1] == [PASSING, str(target.counts()["GET /a 200"]), "> 0", "✅ pass"]
    assert rules_table[2] == [FAILING, str(failures), "< 1", "❌ fail"]
    check_requests(markdown, data, target)
    errors = tables(markdown)[f"Errors (1 distinct, {failures} in all)"]
    assert errors[1] == ["GET /status/500: status 500", str(failures)]
    # JUnit: valid, one case per rule and one for the run; the failing rule's observed value
    root = junit(xml)
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.attrib["name"], suite.attrib["tests"], suite.attrib["failures"]) == (
        "gaggle", "3", "1",
    )  # fmt: skip
    assert float(suite.attrib["time"]) == pytest.approx(data["run"]["duration"], abs=0.001)
    found = cases(root)
    assert set(found) == {"run", PASSING, FAILING}
    assert found["run"].attrib["classname"] == "gaggle.run"
    assert found["run"].find("failure") is None  # the run itself ended as planned
    assert found[PASSING].find("failure") is None
    failure = found[FAILING].find("failure")
    assert failure is not None
    assert failure.attrib["message"] == f"observed {failures}, limit < 1"
    assert found[FAILING].attrib["classname"] == "gaggle.thresholds"
    summary = found["run"].findtext("system-out") or ""
    assert f"requests: {data['requests_total']['count']:,}, failed: {failures:,}" in summary


def test_the_manager_writes_them_from_merged_worker_data(target: Target, tmp_path: Path) -> None:
    markdown, xml, data = run_with_reports(tmp_path, target, "--processes", "2")
    assert markdown.startswith("## ⚪ No thresholds · ")
    assert "gaggle (2 workers)" in markdown.splitlines()[2]
    check_requests(markdown, data, target)
    root = junit(xml)
    assert list(cases(root)) == ["run"]  # no rules: still a valid file with the run's case
    assert root.find("testsuite/testcase/failure") is None
    properties = {p.attrib["name"]: p.attrib["value"] for p in root.iter("property")}
    assert properties["mode"] == "gaggle (2 workers)"
    assert properties["verdict"] == "None"


def test_an_unknown_report_suffix_is_refused_naming_the_allowed_ones(tmp_path: Path) -> None:
    test = write_test(tmp_path, TEST)
    result = run_gaggle(
        "run", test, "--host", "http://127.0.0.1:9", "-t", "1", "-R", "r.md", "-R", "r.txt"
    )
    assert result.returncode == 2
    assert "--report-file: 'r.txt' is not allowed" in result.stderr
    assert ".html, .htm, .json, .md, .xml" in result.stderr
    missing = tmp_path / "missing" / "r.xml"
    result = run_gaggle(
        "run", test, "--host", "http://127.0.0.1:9", "-t", "1", "-R", "r.md", "-R", str(missing)
    )
    assert result.returncode == 2
    assert f"--report-file: '{missing}' is not allowed; cannot write there" in result.stderr
    assert not Path("r.md").exists()


# --- hand-made data ------------------------------------------------------------------------------
def facts(**changes: object) -> RunFacts:
    values: dict[str, Any] = {
        "command": "gaggle run test.py -R r.md",
        "hosts": ["http://127.0.0.1:1"],
        "users": 10,
        "hatch_rate": 2.0,
        "run_time": 60.0,
        "reset_metrics": True,
        "started": 1_000_000.0,
        "ended": 1_000_060.0,
        "duration": 60.0,
        "stopped_by": "run time elapsed",
        "workers": 0,
        "workers_lost": 0,
        "version": "0.1.0",
    }
    values.update(changes)
    return RunFacts(**values)


def report(metrics: Metrics, **changes: object) -> dict[str, Any]:
    timeline = Timeline(Source(metrics=Metrics, users=lambda: 0))
    timeline.finish()
    return build_report(facts(**changes), metrics, [], timeline)


HOSTILE = "/x|{n}`<script>alert({n})</script>\n\r\x00\x1b[31m*b* _i_ [l](http://e) $x$ &amp;"


def test_hostile_names_stay_escaped_and_5000_names_stay_bounded() -> None:
    metrics = Metrics()
    for n in range(5000):
        stats = metrics.requests.setdefault(("GET", HOSTILE.format(n=n) + "y" * (n % 400)), Stats())
        for _ in range(1 + n % 7):
            stats.record(1000 + n, n % 3 != 0, 200 if n % 3 else 500)
        metrics.errors[f"GET {HOSTILE.format(n=n)}: " + "e" * 2000] = 1 + n % 11
    data = report(metrics)
    rule = f"p95(GET {HOSTILE.format(n=1)}) < 1"
    data["thresholds"] = [{"expression": rule, "passed": False, "observed": 2.5}]
    data["verdict"] = "Failed"
    markdown = render_markdown(data)
    assert len(markdown.encode()) < MAX_BYTES  # bounded by the shown rows, not the names
    assert "<script" not in markdown
    assert not html_of(markdown)
    assert not re.search("[\x00-\x09\x0b-\x1f\x7f]", markdown)  # one line per row
    found = tables(markdown)
    requests = found["Requests (10 busiest of 5,000)"]
    for rows in found.values():
        assert all(len(row) == len(rows[0]) for row in rows)  # no name split a row
    # the busiest ten as a reader sees them (cut to NAME_CHARS), then the rest, then the total
    busiest = sorted(metrics.requests.items(), key=lambda kv: (-kv[1].count, kv[0][1]))[:10]
    for row, ((method, name), stats) in zip(requests[1:11], busiest, strict=True):
        shown = f"{method} {name}"
        shown = shown if len(shown) <= NAME_CHARS else shown[: NAME_CHARS - 1] + "…"
        assert row[0] == shown.translate({c: chr(0x2400 + c) for c in range(0x20)})
        assert row[1] == f"{stats.count:,}"
    assert requests[11][0] == "(other names)"
    assert sum(int(row[1].replace(",", "")) for row in requests[1:12]) == int(
        requests[12][1].replace(",", "")
    )
    assert requests[12][0] == "Aggregated"
    errors = next(rows for title, rows in found.items() if title.startswith("Errors"))
    assert len(errors) == 11
    assert all(len(row[0]) <= 300 for row in errors[1:])
    rules = found["Thresholds and regression rules"]
    assert rules[1][0].startswith("p95(GET /x|1`<script>alert(1)</script>␊␍␀␛[31m*b* _i_")
    # JUnit: control characters XML 1.0 forbids are dropped, the rest escaped; still valid
    xml = render_junit(data)
    SCHEMA.validate(xml)
    case = cases(ET.fromstring(xml))[rule.replace("\x00", "").replace("\x1b", "")]
    assert case.find("failure") is not None
    assert "\x00" not in xml
    assert "<script" not in xml


def test_a_run_that_lost_workers_or_was_cut_short_fails_its_run_case() -> None:
    for stopped_by, lost, problem in (
        ("run time elapsed", 1, "1 worker lost mid-run (stopped by: run time elapsed)"),
        ("caught SIGINT again", 0, "aborted: caught SIGINT again"),
        ("worker 2: caught SIGTERM", 0, "a worker left mid-run: worker 2: caught SIGTERM"),
        ("threshold failed: p95 < 5 (abortOnFail)", 0, "stopped early: threshold failed:"),
        ("the test plan is over", 0, None),
        ("caught SIGTERM", 0, None),  # stopped on purpose
        ("stopped through the control API", 0, None),
        ("every user ran its 3 iteration(s)", 0, None),
    ):
        data = report(Metrics(), stopped_by=stopped_by, workers_lost=lost, workers=2)
        root = ET.fromstring(render_junit(data))
        SCHEMA.validate(render_junit(data))
        failure = root.find("testsuite/testcase[@name='run']/failure")
        markdown = render_markdown(data)
        if problem is None:
            assert failure is None, stopped_by
            assert "⚠️" not in markdown
        else:
            assert failure is not None
            assert failure.attrib["message"].startswith(problem)
            assert root.find("testsuite").attrib["failures"] == "1"  # type: ignore[union-attr]
            assert f"> ⚠️ {problem}" in markdown.replace("\\", "")


def test_regression_rules_show_their_resolved_limit_and_baseline() -> None:
    data = report(Metrics())
    data["thresholds"] = [
        {"expression": "p95 < baseline + 10%", "passed": False, "observed": 41.5,
         "limit": 33.0, "baseline": 30.0},
        {"expression": "rps > baseline - 5%", "passed": True, "observed": 120.0,
         "limit": 95.0, "baseline": 100.0},
        {"expression": "p95(GET /new) < baseline", "passed": True, "observed": 3.0,
         "limit": None, "baseline": None},
        {"expression": "failRatio < 0.01", "passed": True, "observed": 0.0049},
    ]  # fmt: skip
    data["verdict"] = "Failed"
    root = ET.fromstring(render_junit(data))
    SCHEMA.validate(render_junit(data))
    found = cases(root)
    assert found["p95 < baseline + 10%"].attrib["classname"] == "gaggle.regression"
    assert found["failRatio < 0.01"].attrib["classname"] == "gaggle.thresholds"
    failure = found["p95 < baseline + 10%"].find("failure")
    assert failure is not None
    assert failure.attrib["message"] == "observed 41.5, limit < baseline + 10% (= 33)"
    assert "baseline: 30" in (failure.text or "")
    rows = tables(render_markdown(data))["Thresholds and regression rules"]
    assert rows[0] == ["Rule", "Observed", "Limit", "Baseline", "Result"]
    assert rows[1] == ["p95 < baseline + 10%", "41.5", "< baseline + 10% (= 33)", "30", "❌ fail"]
    assert rows[3] == ["p95(GET /new) < baseline", "3", "< baseline (no baseline value)", "—",
                       "✅ pass"]  # fmt: skip
    assert rows[4] == ["failRatio < 0.01", "0.0049", "< 0.01", "—", "✅ pass"]


def compared(current: float, baseline: float | None, significant: bool) -> dict[str, Any]:
    change = None if baseline is None else current - baseline
    relative = None if baseline in (None, 0) else (current - baseline) / baseline  # type: ignore[operator]
    return {"baseline": baseline, "current": current, "change": change, "relative": relative,
            "significant": significant}  # fmt: skip


def changes(count: float, p95: float, significant: bool = False) -> dict[str, Any]:
    return {
        "count": compared(count, count, False),
        "rps": compared(count / 60, count / 60, False),
        "fail_percent": compared(0.0, 0.0, False),
        "p50_ms": compared(10.0, 10.0, False),
        "p95_ms": compared(p95, 20.0, significant),
        "p99_ms": compared(40.0, 39.9, False),
    }


def test_the_baseline_section_marks_significant_changes() -> None:
    data = report(Metrics())
    requests = [
        {"method": "GET", "name": f"/item/{n}|`<b>`", "changes": changes(1000 + n, 20.0)}
        for n in range(30)
    ]
    requests[5]["changes"] = changes(5000, 30.0, significant=True)  # the busiest, slower
    data["baseline"] = {
        "file": "base|line.json",
        "started": "2026-12-01T10:00:00.000+00:00",
        "version": "0.1.0",
        "same_test": False,
        "notes": ["the baseline is of a different test file", "GET /gone <b>is</b> missing"],
        "aggregate": changes(35_000, 19.0, significant=False)
        | {"p99_ms": compared(80.0, 40.0, True), "count": compared(35_000, None, False)},
        "requests": requests,
        "only_here": ["GET /new"],
        "only_in_baseline": [f"GET /gone/{n}" for n in range(25)],
    }
    markdown = render_markdown(data)
    section = markdown[markdown.index("### Compared with the baseline") :]
    assert "Baseline: base\\|line.json, started 2026-12-01T10:00:00.000+00:00, Gaggle 0.1.0, " \
        "**a different test file**." in section  # fmt: skip
    found = tables(markdown)["Compared with the baseline"]
    aggregate = {row[0]: row[1:] for row in found[: len(found) - 11]}
    assert aggregate["p99 ms"] == ["40", "80 ▲ +100.0 %"]  # significant: bold with its arrow
    assert aggregate["p95 ms"] == ["20", "19 (-5.0 %)"]  # within the noise: in parentheses
    assert aggregate["Requests"] == ["—", "35,000 (new)"]
    assert "**▲ +100.0 %**" in section
    per_request = found[len(found) - 11 :]
    assert per_request[0] == [
        "Request",
        "Requests",
        "req/s",
        "Fail %",
        "p50 ms",
        "p95 ms",
        "p99 ms",
    ]
    assert per_request[1][0] == "GET /item/5|`<b>`"  # the busiest first, escaped
    assert per_request[1][5] == "30 ▲ +50.0 %"
    assert [row[0] for row in per_request[2:]] == [
        f"GET /item/{n}|`<b>`" for n in range(29, 20, -1)
    ]
    assert "…and 20 more requests." in section
    assert "- GET /gone &lt;b&gt;is&lt;/b&gt; missing" in section
    assert not html_of(markdown)
    assert "Only in this run: GET /new" in section
    assert "Only in the baseline: " + ", ".join(f"GET /gone/{n}" for n in range(10)) in section
    assert ", …and 15 more" in section


def test_no_baseline_key_no_baseline_section() -> None:
    assert "Compared with the baseline" not in render_markdown(report(Metrics()))


def test_the_manager_pod_keeps_a_given_html_or_json_report_among_several() -> None:
    from gaggle_operator.manage import _with_report_file  # the operator's manager pod

    run = ["run", "t.py", "--manager"]
    given = [*run, "-R", "r.md", "-R", "r.json", "-R", "r.html"]
    assert _with_report_file(given) == (given, "r.json", False)  # the first it can keep
    args, path, ours = _with_report_file([*run, "-R", "r.md", "-R", "j.xml"])
    assert (args[-2:], path.endswith("report.html"), ours) == (["--report-file", path], True, True)
    Path(path).parent.rmdir()
