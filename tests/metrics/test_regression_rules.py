"""Regression rules: ``p95(GET /) < baseline + 10%`` — every form read into one canonical text, the
refusals naming the rule, the value and what is allowed, and the limit resolved from a baseline
given to the metrics layer as a plain mapping (no report file here: metrics is a low layer)."""

from __future__ import annotations

import pytest

from gaggle.errors import ConfigError
from gaggle.metrics import Aggregator, Metrics, RequestRecord
from gaggle.metrics.histogram import RELATIVE_ERROR
from gaggle.metrics.thresholds import (
    Threshold,
    ThresholdError,
    evaluate,
    parse_threshold,
    verdict_rows,
)
from gaggle.options.config import build_config


@pytest.mark.parametrize(
    ("text", "canonical", "offset", "relative"),
    [("p95(GET /) < baseline + 10%", "p95(GET /) < baseline + 10%", None, 10.0),
     ("rps>baseline-5%", "rps > baseline - 5%", None, -5.0),
     ("failRatio <= baseline", "failRatio <= baseline", 0.0, None),
     (" avg ( GET  /a ) < baseline+20 ", "avg(GET /a) < baseline + 20", 20.0, None),
     ("requests >= baseline - 100", "requests >= baseline - 100", -100.0, None),
     ("p99.9 < baseline + 2.5e1%", "p99.9 < baseline + 25%", None, 25.0),
     ("max < baseline - 100%", "max < baseline - 100%", None, -100.0)],
)  # fmt: skip
def test_every_baseline_form_reads_into_one_canonical_rule(
    text: str, canonical: str, offset: float | None, relative: float | None
) -> None:
    rule = parse_threshold(text)
    assert str(rule) == canonical
    assert (rule.offset, rule.relative, rule.baseline_based) == (offset, relative, True)
    assert parse_threshold(str(rule)) == rule  # the canonical text reads back the same
    assert build_config({"thresholds": [text], "baseline": "b.json"}).thresholds == (canonical,)


def test_an_absolute_rule_is_not_a_regression_rule() -> None:
    rule = parse_threshold("p95 < 300")
    assert (rule.baseline_based, rule.offset, rule.relative, str(rule)) == (
        False,
        None,
        None,
        "p95 < 300",
    )


@pytest.mark.parametrize(
    ("text", "words"),
    [("loopLag < baseline", "loopLag has no baseline value"),
     ("p42 < baseline + 1%", "p42 has no baseline value"),
     ("lagP99 < baseline", "lagP99 has no baseline value"),
     ("dropped <= baseline", "dropped has no baseline value"),
     ("lagMax < baseline", "lagMax has no baseline value"),
     ("p95 < baseline * 2", "baseline + N%"),
     ("p95 < baseline + ", "baseline + N%"),
     ("p95 < baseline + x%", "baseline + N%"),
     ("p95 < baselines", "baseline + N%"),
     ("p95 < baseline - 150%", "N ≤ 100"),
     ("p95 < baseline + 1e999%", "finite"),
     ("p95 < 10 + baseline", "use METRIC[(REQUEST)] OP NUMBER")],
)  # fmt: skip
def test_a_bad_regression_rule_names_the_flag_the_rule_and_what_is_allowed(
    text: str, words: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        build_config({"thresholds": [text], "baseline": "b.json"})
    assert str(caught.value).startswith(f"--threshold: {text!r} is not allowed;")
    assert words in str(caught.value)
    if "has no baseline value" in words:  # what a baseline can give instead
        assert "p50, p90, p95, p99, p99.9" in str(caught.value)
        assert "failRatio, rps, requests" in str(caught.value)


def test_a_regression_rule_without_a_baseline_names_both_options() -> None:
    with pytest.raises(ConfigError) as caught:
        build_config({"thresholds": ["p95 < 300", "p95 < baseline + 10%"]})
    message = str(caught.value)
    assert message.startswith("--threshold 'p95 < baseline + 10%' compares with a baseline")
    assert "--baseline FILE" in message
    build_config({"thresholds": ["p95 < 300"]})  # an absolute rule needs none


def record(metrics: Aggregator, name: str, elapsed_ms: float, ok: bool = True) -> None:
    record = RequestRecord(0, "GET", name, name, name, False, int(elapsed_ms * 1000),
                           200 if ok else 500, ok, False, 0)  # fmt: skip
    metrics.record_request(record)


def recorded() -> Metrics:
    """GET /: 10, 20, 30, 40 ms (one failed); POST /b: 100 ms; GET /new: 5 ms."""
    aggregator = Aggregator()
    for elapsed, ok in ((10, True), (20, True), (30, False), (40, True)):
        record(aggregator, "/", elapsed, ok)
    aggregator.record_request(
        RequestRecord(0, "POST", "/b", "/b", "/b", False, 100_000, 200, True, False, 0)
    )
    record(aggregator, "/new", 5)
    return aggregator.drain()


BASELINE = {
    (None, "p50"): 20.0,
    (None, "rps"): 4.0,
    (None, "failRatio"): 0.25,
    ("GET /", "p50"): 10.0,
    ("GET /", "avg"): 30.0,
    ("GET /", "requests"): 4.0,
    ("POST /b", "max"): 90.0,
}


def test_the_limit_is_resolved_from_the_baseline_value_of_the_same_metric_and_request() -> None:
    rules = [
        "p50(GET /) < baseline + 50%",  # 20 ms against a limit of 15: fails
        "p50(GET /) < baseline + 150%",  # limit 25: passes
        "avg(GET /) <= baseline - 5",  # 25 against 25: passes
        "requests(GET /) >= baseline",  # 4 against 4
        "rps > baseline - 5%",  # 3 per second against 3.8: fails
        "failRatio <= baseline",  # 1/6 against 0.25
        "max(/b) < baseline + 10",  # a bare name, as this run made it: POST /b
    ]
    verdicts = evaluate([parse_threshold(r) for r in rules], recorded(), 2.0, 0.0, BASELINE)
    got = {v.expression: (v.observed, v.baseline, v.limit, v.passed) for v in verdicts}
    p50 = pytest.approx(20.0, rel=RELATIVE_ERROR)  # the histogram's, within its stated bound
    assert got == {
        rules[0]: (p50, 10.0, 15.0, False),
        rules[1]: (p50, 10.0, 25.0, True),
        rules[2]: (25.0, 30.0, 25.0, True),
        rules[3]: (4.0, 4.0, 4.0, True),
        rules[4]: (3.0, 4.0, pytest.approx(3.8), False),
        rules[5]: (pytest.approx(1 / 6), 0.25, 0.25, True),
        rules[6]: (100.0, 90.0, 100.0, False),  # 100 < 100 does not hold
    }
    assert not any(v.unjudged for v in verdicts)


def test_a_request_missing_from_the_baseline_is_not_judged_and_says_so() -> None:
    rules = [parse_threshold(r) for r in ("p95(GET /new) < baseline", "p99.9 < baseline + 1%")]
    rules.append(parse_threshold("p95(GET /never) < baseline"))  # not made now: fails as ever
    verdicts = evaluate(rules, recorded(), 2.0, 0.0, BASELINE)
    assert [(v.passed, v.unjudged, v.limit, v.baseline) for v in verdicts] == [
        (True, True, None, None),  # GET /new: made now, not in the baseline
        (True, True, None, None),  # the baseline has no p99.9 of all requests
        (False, False, None, None),
    ]
    assert [v.observed is not None for v in verdicts] == [True, True, False]
    rows = verdict_rows(verdicts)
    assert rows[0] == {
        "expression": "p95(GET /new) < baseline",
        "passed": True,
        "observed": pytest.approx(5.0, rel=RELATIVE_ERROR),
        "limit": None,
        "baseline": None,
    }
    # no baseline at all (a rule evaluated without one): unjudged too, never a crash
    alone = evaluate(rules[:1], recorded(), 2.0)
    assert (alone[0].passed, alone[0].unjudged) == (True, True)


def test_an_absolute_rule_keeps_its_number_as_the_limit() -> None:
    verdicts = evaluate([parse_threshold("requests(GET /) > 5")], recorded(), 2.0, 0.0, BASELINE)
    assert verdict_rows(verdicts) == [
        {
            "expression": "requests(GET /) > 5",
            "passed": False,
            "observed": 4.0,
            "limit": 5.0,
            "baseline": None,
        }
    ]


def test_a_percentile_rule_finds_the_baseline_by_its_canonical_name() -> None:
    rule = parse_threshold("p50.0 < baseline")
    assert (rule.baseline_metric, rule.quantile) == ("p50", 0.5)
    (verdict,) = evaluate([rule], recorded(), 2.0, 0.0, BASELINE)
    assert (verdict.baseline, verdict.limit) == (20.0, 20.0)


def test_threshold_is_one_type_and_its_errors_say_the_rule() -> None:
    assert isinstance(parse_threshold("p95 < baseline"), Threshold)
    with pytest.raises(ThresholdError) as caught:
        parse_threshold("p95 < baseline % 3")
    assert caught.value.text == "p95 < baseline % 3"
