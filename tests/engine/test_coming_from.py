"""README's "Coming from Locust" and "Coming from Goose": their examples run against the counting
target and make exactly the requests they say, and every flag their tables name is one that
Gaggle has, every one of Goose 0.10's flags mapped."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

from gaggle.options.argv import add_run_options
from tests.conftest import ROOT, Target, run_gaggle

# Goose 0.10's flags, from its README's `-h` (the seed)
GOOSE_0_10_FLAGS = {
    *("-h", "--help", "-V", "--version", "-l", "--list", "-H", "--host", "-u", "--users"),
    *("-r", "--hatch-rate", "-t", "--run-time", "-g", "--log-level", "-L", "--log-file"),
    *("-v", "--verbose", "--running-metrics", "--no-reset-metrics", "--no-metrics"),
    *("--no-task-metrics", "-R", "--report-file", "-m", "--requests-file", "--requests-format"),
    *("-d", "--debug-file", "--debug-format", "--no-debug-body", "--status-codes"),
    *("--only-summary", "--throttle-requests", "--sticky-follow", "--manager"),
    *("--expect-workers", "--no-hash-check", "--manager-bind-host", "--manager-bind-port"),
    *("--worker", "--manager-host", "--manager-port"),
}
FLAG = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")
CODE = re.compile(r"`([^`]+)`")


def requests_of(report: Path) -> dict[str, tuple[int, int]]:
    """(count, fails) per request row of a JSON report."""
    data = json.loads(report.read_text())
    return {f"{r['method']} {r['name']}": (r["count"], r["fails"]) for r in data["requests"]}


def test_the_locust_style_example_makes_exactly_the_requests_it_says(
    target: Target, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    result = run_gaggle(
        "run", "examples/locust_style.py", "--host", target.url, "-u", "2", "-r", "2",
        "--iterations", "3", "--no-reset-metrics", "-R", str(report),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # 2 users: on_start's login, then 3 cycles of hello_world, view_items ×3 (3 items each),
    # signed_in and expected_missing_page
    assert target.counts() == {
        "POST /login 302": 2,
        "GET / 200": 2,  # where the login redirects
        "GET /a 200": 6,
        "GET /b 200": 6,
        "GET /echo 200": 54,
        "GET /whoami 200": 6,
        "GET /status/404 404": 6,
    }
    assert requests_of(report) == {
        "POST /login": (2, 0),
        "GET /a": (6, 0),
        "GET /b": (6, 0),
        "GET /item": (54, 0),
        "GET /whoami": (6, 0),
        "GET missing page": (6, 0),  # a 404 that set_success counts as a success
    }


def test_the_goose_style_example_makes_exactly_the_requests_it_says(
    target: Target, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "examples/goose_style.py", "--host", target.url, "-u", "3", "-r", "3",
         "--iterations", "2", "--no-reset-metrics", "-R", str(report)],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # the command line overrides the program's defaults (8 users); --status-codes stays
    assert "Status codes" in result.stdout
    assert target.counts() == {
        "POST /login 302": 3,
        "GET / 200": 3 + 12,  # the logins' redirects, then 3 users × 2 cycles × weight 2
        "GET /about/ 200": 6,
        "GET /c 200": 3,  # on_stop, once per user
    }
    assert requests_of(report) == {
        "POST /login": (3, 0),
        "GET /": (12, 0),  # the task is named "front page", its request is the path
        "GET /about/": (6, 0),
        "GET logout": (3, 0),
    }


def readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else len(text)]


def table_columns(section: str) -> list[tuple[str, str]]:
    """(first cell, second cell) of each row of the section's tables (headers name no flag)."""
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if line.startswith("|") and len(cells) >= 2 and not set(cells[0]) <= {"-", " "}:
            rows.append((cells[0], cells[1]))
    return rows


def flags_in(cell: str) -> set[str]:
    """The flags in a cell's code spans; ``-vv`` is ``-v`` given twice."""
    found = set()
    for code in CODE.findall(cell):
        for flag in FLAG.findall(code):
            repeated = re.fullmatch(r"-([a-z])\1+", flag)
            found.add(f"-{repeated[1]}" if repeated else flag)
    return found


def gaggle_flags() -> set[str]:
    run = argparse.ArgumentParser()  # gaggle run's options, with its -h
    add_run_options(run)
    return {flag for action in run._actions for flag in action.option_strings} | {"-V", "--version"}


def test_every_goose_0_10_flag_maps_to_a_gaggle_flag() -> None:
    section = readme_section("Coming from Goose")
    rows = table_columns(section)
    goose = set().union(*(flags_in(left) for left, _ in rows))
    assert goose >= GOOSE_0_10_FLAGS, GOOSE_0_10_FLAGS - goose
    named = set().union(*(flags_in(right) for _, right in rows))
    assert named - gaggle_flags() == set(), "README names flags gaggle run does not have"
    assert "[the control API](#changing-a-running-test)" in section
    assert "examples/goose_style.py" in section


def test_every_gaggle_flag_the_locust_section_names_exists() -> None:
    section = readme_section("Coming from Locust")
    rows = table_columns(section)
    named = set().union(*(flags_in(right) for _, right in rows))
    assert {"--processes", "--manager", "--worker", "-R", "--web"} <= named
    assert named - gaggle_flags() == set(), "not options of gaggle run"
    assert not any("coming" in right for _, right in rows), "a row says something is coming"
    web_ui = next(right for left, right in rows if left == "the web UI")
    assert "[live page](#the-live-web-page)" in web_ui
    for concept in ("LoadTestShape", "catch_response", "wait_time", "--headless", "--csv"):
        assert concept in section, concept
    assert "examples/locust_style.py" in section
