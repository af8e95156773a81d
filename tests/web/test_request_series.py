"""/metrics' request rows, kept from the run's feed, equal the rows folded from scratch.

A scrape once folded every row's fine histogram into Prometheus's fixed buckets; now it adds
only what arrived since the previous scrape (``web.request_series``). Whatever the order of
arrivals — new names, the reset, times past the last bound, scrapes with nothing new — each scrape
must show what a fold of the totals shows, and the ``(other names)`` row must be the exact sum
of the names left out.
"""

from __future__ import annotations

import json
import random

from prometheus_client.parser import text_string_to_metric_families

from gaggle.metrics import (
    Aggregator,
    Ledger,
    RequestRecord,
    Source,
    Stats,
    busiest,
)
from gaggle.web.prometheus import LATENCY_BUCKETS, MetricsPage, cumulative_buckets, summary_body
from gaggle.web.request_series import RequestSeries, Row


def expected(stats: Stats) -> tuple[int, int, int, dict[int, int], list[tuple[str, float]]]:
    return (stats.count, stats.fail_count, stats.sum_us, stats.status_codes,
            cumulative_buckets(stats))  # fmt: skip


def shown(row: Row) -> tuple[int, int, int, dict[int, int], list[tuple[str, float]]]:
    return row.count, row.fails, row.sum_us, row.codes, row.cumulative(LATENCY_BUCKETS)


def record(aggregator: Aggregator, rng: random.Random, names: int) -> None:
    name = f"/item/{rng.randrange(names)}"
    time_us = int(10 ** rng.uniform(2, 8.5))  # 0.1 ms .. 5 min: past the last bound (60 s)
    status = rng.choice((200, 200, 302, 404, 500))
    aggregator.record_request(
        RequestRecord(0, "GET", name, name, name, False, time_us, status, status < 400, False, 0)
    )


def test_kept_rows_equal_a_fold_from_scratch_after_every_scrape() -> None:
    rng = random.Random(11)
    aggregator = Aggregator()
    ledger = Ledger(aggregator)
    totals = ledger.run_totals()
    with_feed = RequestSeries(totals.follow, LATENCY_BUCKETS)
    differenced = RequestSeries(Source(metrics=totals.metrics, users=int).feed, LATENCY_BUCKETS)
    for step in range(12):
        for _ in range(rng.randrange(0, 400)):  # some scrapes see nothing new
            record(aggregator, rng, names=60)
        if step == 4:
            ledger.reset()  # the hatching phase set aside: the run's rows go on
        for series in (with_feed, differenced):
            series.update()
            rows = totals.metrics().requests
            assert series.rows.keys() == rows.keys()
            for key, stats in rows.items():
                assert shown(series.rows[key]) == expected(stats), (step, key)
    assert len(with_feed.rows) == 60


def test_the_other_names_row_sums_exactly_the_names_left_out() -> None:
    rng = random.Random(12)
    aggregator = Aggregator()
    ledger = Ledger(aggregator)
    series = RequestSeries(ledger.run_totals().follow, LATENCY_BUCKETS)
    for _ in range(3):
        for _ in range(2_000):
            record(aggregator, rng, names=300)
        series.update()
        view = busiest(ledger.run_totals().metrics().requests, 25)
        rows = list(series.shown(25))
        assert [key for key, _ in rows[:-1]] == [key for key, _ in view.shown]
        for (_, row), (_, stats) in zip(rows, view.shown, strict=False):
            assert shown(row) == expected(stats)
        other_key, other = rows[-1]
        assert other_key is None
        assert view.other is not None
        assert shown(other) == expected(view.other)


def test_the_page_parses_and_every_name_comes_back_as_it_was_given() -> None:
    """The request families are our own text: a parser must read back each name — quotes,
    backslashes, newlines, non-ASCII — with its counts, and the other families beside them."""
    aggregator = Aggregator()
    ledger = Ledger(aggregator)
    names = ['/say/"hi"', "/back\\slash", "/two\nlines", "/ünïcode", "/plain"]
    for i, name in enumerate(names):
        for _ in range(i + 1):
            aggregator.record_request(
                RequestRecord(0, "GET", name, name, name, False, 1500, 200, True, False, 0)
            )
    totals = ledger.run_totals()
    page = MetricsPage(Source(metrics=totals.metrics, users=lambda: 4, follow=totals.follow))
    families = {family.name: family for family in text_string_to_metric_families(
        page.render().decode())}  # fmt: skip
    requests = {s.labels["name"]: s.value for s in families["gaggle_requests"].samples}
    assert requests == {name: float(i + 1) for i, name in enumerate(names)}
    latency = families["gaggle_response_time_seconds"].samples
    counts = {s.labels["name"]: s.value for s in latency if s.name.endswith("_count")}
    assert counts == requests
    le = [
        s.labels["le"]
        for s in latency
        if s.name.endswith("_bucket") and s.labels["name"] == "/plain"
    ]
    assert le == [*(repr(bound) for bound in LATENCY_BUCKETS), "+Inf"]
    assert families["gaggle_users"].samples[0].value == 4


def test_the_summary_document_is_every_row_as_the_metrics_hold_it() -> None:
    """/summary writes its rows as text one at a time (not a tree of dicts held at once): the
    document must still read back as the totals' own ``to_dict``, odd names included."""
    rng = random.Random(5)
    aggregator = Aggregator()
    ledger = Ledger(aggregator)
    for _ in range(3000):
        record(aggregator, rng, 300)
    for name in ('/say/"hi"', "/back\\slash", "/two\nlines", "/ünïcode"):
        aggregator.record_request(
            RequestRecord(0, "POST", name, name, name, False, 1500, 201, True, False, 0)
        )
    aggregator.record_error("an error")
    totals = ledger.run_totals()
    source = Source(metrics=totals.metrics, users=lambda: 4, workers=lambda: (2, 1))
    document = json.loads(summary_body(source))
    assert document == {
        "users": 4,
        "workers": {"connected": 2, "lost": 1},
        "task_names": [],
        **json.loads(json.dumps(totals.metrics().to_dict())),
    }
    assert len(document["requests"]) == len(totals.metrics().requests) == 304
