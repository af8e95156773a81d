"""Thresholds: rules parsed with clear errors, evaluated exactly on the run's numbers, and a failed
rule exits 3 — standalone and in Gaggle mode — against the counting target."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gaggle.errors import ConfigError
from gaggle.metrics import Aggregator, RequestRecord
from gaggle.metrics.histogram import RELATIVE_ERROR
from gaggle.metrics.thresholds import evaluate, parse_threshold
from gaggle.options.config import build_config
from tests.conftest import Target, run_gaggle, write_test

TEST = """
from gaggle import TaskSet, task, constant

class Plain(TaskSet):
    wait_time = constant(0.02)

    @task(weight=3)
    async def index(self) -> None:
        await self.get("/")

    @task
    async def missing(self) -> None:
        await self.get("/status/404")
"""


@pytest.mark.parametrize(
    ("text", "canonical"),
    [("p95<300", "p95 < 300"), (" p99.9 ( GET  / ) >= 1.5 ", "p99.9(GET /) >= 1.5"),
     ("failRatio < 0.01", "failRatio < 0.01"), ("rps>50", "rps > 50"),
     ("requests(POST /login) > 0", "requests(POST /login) > 0")],
)  # fmt: skip
def test_rules_are_read_into_one_canonical_form(text: str, canonical: str) -> None:
    assert str(parse_threshold(text)) == canonical
    assert build_config({"thresholds": [text]}).thresholds == (canonical,)


@pytest.mark.parametrize(
    ("text", "words"),
    [("p95 = 300", "use METRIC[(REQUEST)] OP NUMBER"), ("median < 3", "unknown metric 'median'"),
     ("p100 < 3", "between p0 and p100"), ("p95() < 3", "name a request"),
     ("p95 < inf", "use METRIC"), ("p95 < 1e999", "finite")],
)  # fmt: skip
def test_a_bad_rule_names_the_flag_the_value_and_what_is_allowed(text: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_config({"thresholds": [text]})
    assert str(caught.value).startswith(f"--threshold: {text!r} is not allowed;")
    assert words in str(caught.value)


def test_rules_observe_exactly_what_was_recorded() -> None:
    aggregator = Aggregator()
    for i, (name, elapsed_ms, status) in enumerate(
        [("/", 10, 200), ("/", 20, 200), ("/", 30, 500), ("/", 40, 200), ("/b", 100, 200)]
    ):
        aggregator.record_request(
            RequestRecord(i, "GET", name, name, name, False, elapsed_ms * 1000, status,
                          status == 200, False, 0)
        )  # fmt: skip
    metrics = aggregator.drain()
    rules = ["requests(GET /) >= 4", "failures(GET /) < 1", "failRatio(GET /) <= 0.25",
             "avg(GET /) < 25", "min > 10", "max(/b) <= 100", "p50(GET /) < 20.1",
             "rps > 2.5", "p95(GET /nowhere) < 1"]  # fmt: skip
    verdicts = evaluate([parse_threshold(r) for r in rules], metrics, duration=2.0)
    observed = {v.expression: (v.observed, v.passed) for v in verdicts}
    assert observed == {
        "requests(GET /) >= 4": (4.0, True),
        "failures(GET /) < 1": (1.0, False),
        "failRatio(GET /) <= 0.25": (0.25, True),
        "avg(GET /) < 25": (25.0, False),
        "min > 10": (10.0, False),
        "max(/b) <= 100": (100.0, True),  # a bare name used by one method only
        # the histogram's value: within its stated bound (RELATIVE_ERROR) of the exact 20 ms
        "p50(GET /) < 20.1": (pytest.approx(20.0, rel=RELATIVE_ERROR), True),
        "rps > 2.5": (2.5, False),
        "p95(GET /nowhere) < 1": (None, False),  # never requested: fails, never guessed
    }


def requests_row(stdout: str) -> int:
    row = re.search(r"^\s*GET /\s+([\d,]+)\s", stdout, re.MULTILINE)
    assert row is not None, stdout
    return int(row.group(1).replace(",", ""))


def test_a_run_passes_or_fails_its_thresholds_with_the_exit_code(
    target: Target, tmp_path: Path
) -> None:
    test = write_test(tmp_path, TEST)
    common = ["run", test, "--host", target.url, "-u", "3", "-r", "30", "-t", "1",
              "--no-reset-metrics", "--only-summary"]  # fmt: skip
    passing = run_gaggle(*common, "--threshold", "requests(GET /) > 5",
                         "--threshold", "failRatio(GET /) < 0.01")  # fmt: skip
    assert passing.returncode == 0, passing.stderr
    assert passing.stdout.count("passed") == 2
    served = target.counts()["GET / 200"]
    assert re.search(rf"requests\(GET /\) > 5\s+{served:,}\s+passed", passing.stdout)  # exact
    target.reset()
    failing = run_gaggle(*common, "--threshold", "failRatio < 0.01", "--threshold", "rps > 0")
    assert failing.returncode == 3, failing.stderr
    assert "FAILED" in failing.stdout
    assert "threshold failed: failRatio < 0.01" in failing.stderr
    bad = run_gaggle(*common, "--threshold", "p95 ~ 3")
    assert bad.returncode == 2
    assert "--threshold: 'p95 ~ 3' is not allowed" in bad.stderr


def test_the_manager_judges_the_merged_numbers(target: Target, tmp_path: Path) -> None:
    test = write_test(tmp_path, TEST)
    result = run_gaggle(
        "run", test, "--processes", "2", "--host", target.url, "-u", "4", "-r", "40", "-t", "1",
        "--no-reset-metrics", "--only-summary", "--threshold", "requests(GET /status/404) < 1",
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    served = target.counts()["GET /status/404 404"]
    assert re.search(rf"requests\(GET /status/404\) < 1\s+{served:,}\s+FAILED", result.stdout)
    assert requests_row(result.stdout) == target.counts()["GET / 200"]
