"""Reads cost what changed (issue metrics-at-scale, item 1): the whole run's totals that the
per-second readers read — a scrape, /summary, -R's timeline, the live view, the operator — are kept
up to date as deltas arrive, by the ledger here and by the manager's merged tally, and equal what
re-merging the hatching phase on every read (``Metrics.combined``) gave, exactly. A read hands
over the live totals, not a copy; the timeline's feed holds only what changed."""

from __future__ import annotations

import asyncio
import io
import math
import random
from collections.abc import Callable

from rich.console import Console

from gaggle import Attack, TaskSet, task
from gaggle.distributed.codec import to_delta
from gaggle.distributed.merged_tally import MergedTally
from gaggle.metrics import Aggregator, Ledger, Metrics, RequestRecord, Source, TaskRecord
from gaggle.metrics.ledger import FEED_MAX
from gaggle.report.timeline import Timeline
from gaggle.run.runner import Runner
from gaggle.wire import gaggle_pb2 as wire
from tests.conftest import Target

NAMES = [f"/api/resource/{i}" for i in range(200)]


def request(rng: random.Random, name: str, *, update: bool = False) -> RequestRecord:
    """A GET of ``name`` taking 1 ms .. 2 s (log-uniform: a wide spread of buckets)."""
    elapsed_us = int(math.exp(rng.uniform(math.log(1_000), math.log(2_000_000))))
    status = rng.choices((200, 302, 404, 500), (94, 3, 2, 1))[0]
    error = "" if status < 400 else f"status {status}"
    return RequestRecord(
        0, rng.choice(("GET", "POST")), name, name, name, False, elapsed_us, status, status < 400,
        update, 0, error,
    )  # fmt: skip


def record_second(rng: random.Random, aggregator: Aggregator, names: list[str]) -> None:
    """A second of everything a delta carries: requests (a flip too), tasks, errors, an open
    model's lag and drops, what a stop timeout abandoned."""
    for name in names:
        for _ in range(rng.randrange(1, 6)):
            record = request(rng, name)
            aggregator.record_request(record)
            if record.success and rng.random() < 0.05:  # set_failure on a recorded response
                aggregator.flip_request(record._replace(success=False, update=True))
    aggregator.record_task(TaskRecord(0, 0, rng.randrange(3), "t", rng.randrange(90_000), True, 0))
    aggregator.record_error(f"an error {rng.randrange(5)}")
    aggregator.record_lag(rng.randrange(2_000))
    if rng.random() < 0.5:
        aggregator.record_dropped()
    if rng.random() < 0.2:
        aggregator.record_abandoned(request=rng.random() < 0.5)


def test_reads_after_every_delta_equal_the_old_combined_result_across_the_hatch_reset() -> None:
    rng = random.Random(24)
    aggregator = Aggregator()
    ledger = Ledger(aggregator)
    totals = ledger.run_totals()
    feed = totals.follow()
    hatch: Metrics | None = None
    for second in range(12):
        record_second(rng, aggregator, rng.sample(NAMES, 40 if second else 200))
        if second == 5:
            hatch = ledger.reset()  # the hatch: what was counted is set aside
        old = Metrics.combined(hatch, ledger.metrics())  # what each read re-merged before
        assert totals.metrics() == old
        assert totals.requests() == old.aggregated_requests()
        changes = Metrics.combined(*feed())
        assert changes.requests
        assert changes.tasks
    assert hatch is not None
    assert not hatch.is_empty()
    assert totals.metrics().dropped == Metrics.combined(hatch, ledger.metrics()).dropped


def test_reads_with_no_reset_metrics_are_the_ledger_totals_themselves() -> None:
    rng = random.Random(7)
    aggregator = Aggregator()
    ledger = Ledger(aggregator)
    totals = ledger.run_totals()
    for _ in range(6):
        record_second(rng, aggregator, rng.sample(NAMES, 50))
        assert totals.metrics() is ledger.metrics()  # no second copy to keep: no reset
        assert totals.metrics() == Metrics.combined(None, ledger.metrics())
        assert totals.requests() == ledger.metrics().aggregated_requests()


def test_reads_do_not_copy_two_reads_without_a_delta_are_the_same_objects() -> None:
    rng = random.Random(3)
    aggregator = Aggregator()
    ledger = Ledger(aggregator)
    totals = ledger.run_totals()
    record_second(rng, aggregator, NAMES)
    ledger.reset()
    record_second(rng, aggregator, NAMES)
    first = totals.metrics()
    rows = dict(first.requests)
    requests = totals.requests()
    assert totals.metrics() is first
    assert totals.requests() is requests
    aggregator.record_request(request(rng, NAMES[7]))  # one request to one name of 200
    second = totals.metrics()
    assert second is first
    assert totals.requests() is requests
    assert all(second.requests[key] is stats for key, stats in rows.items())


def test_reads_the_run_s_rows_unread_for_feed_max_deltas_are_let_go_and_made_again() -> None:
    """After the hatch, nobody who comes every second reads the whole run's request rows: they
    wait as deltas while somebody reads them, are let go after FEED_MAX unread deltas, and the
    next read makes them again — equal to the old combined result each time."""
    rng = random.Random(11)
    aggregator = Aggregator()
    ledger = Ledger(aggregator)
    totals = ledger.run_totals()
    record_second(rng, aggregator, NAMES)
    hatch = ledger.reset()
    for step in range(FEED_MAX + 8):
        record_second(rng, aggregator, rng.sample(NAMES, 3))
        counts = totals.counts()  # what the per-second readers read: no request rows
        old = Metrics.combined(hatch, ledger.metrics())
        assert not counts.requests
        assert (counts.tasks, counts.errors, counts.lag) == (old.tasks, old.errors, old.lag)
        assert (counts.dropped, counts.abandoned_requests) == (old.dropped, old.abandoned_requests)
        if step in (0, 1, FEED_MAX + 7):  # a regular reader, then one after the rows went
            assert totals.metrics() == old
        if step == FEED_MAX + 6:
            assert totals._rows is None  # FEED_MAX deltas since the last read: let go
    assert totals._rows is not None  # the last read made them again
    assert totals.metrics() == Metrics.combined(hatch, ledger.metrics())


def test_reads_a_feed_holds_what_changed_not_every_name() -> None:
    rng = random.Random(5)
    aggregator = Aggregator()
    ledger = Ledger(aggregator)
    feed = ledger.run_totals().follow()
    record_second(rng, aggregator, NAMES)
    first = Metrics.combined(*feed())  # the first: all so far
    assert first.requests.keys() == ledger.metrics().requests.keys()
    one = request(rng, NAMES[7])
    aggregator.record_request(one)
    (changes,) = feed()  # the one delta that arrived: shared, not copied
    assert list(changes.requests) == [(one.method, one.name)]
    stats = changes.requests[(one.method, one.name)]
    assert (stats.count, stats.histogram.total, len(stats.histogram.counts)) == (1, 1, 1)
    assert feed() == []  # taken: nothing arrived since


def test_reads_a_feed_nobody_takes_stays_one_copy_of_what_arrived() -> None:
    """A page scraped once and never again must not keep every delta of the run."""
    rng = random.Random(6)
    aggregator = Aggregator()
    ledger = Ledger(aggregator)
    totals = ledger.run_totals()
    feed = totals.follow()
    for _ in range(3 * FEED_MAX):
        aggregator.record_request(request(rng, rng.choice(NAMES[:20])))
        totals.metrics()  # a read: one delta each
    deltas = feed()
    assert len(deltas) <= FEED_MAX
    assert _counts(Metrics.combined(*deltas)) == _counts(ledger.metrics())


def test_reads_the_timeline_fed_changes_draws_what_differencing_the_totals_drew() -> None:
    rng = random.Random(11)
    aggregator = Aggregator()
    ledger = Ledger(aggregator)
    hatch: list[Metrics] = []
    clock = iter(range(1000))

    def timeline(source: Source) -> Timeline:
        return Timeline(source, clock=lambda: float(next(clock)), wall=lambda: 1e9)

    old = timeline(
        Source(metrics=lambda: Metrics.combined(*hatch, ledger.metrics()), users=lambda: 3)
    )
    totals = ledger.run_totals()
    new = timeline(Source(metrics=totals.metrics, users=lambda: 3, follow=totals.follow))
    # the totals from the run's kept aggregate, differenced, instead of every row merged again
    kept = timeline(Source(metrics=totals.metrics, users=lambda: 3, follow=totals.follow,
                           requests=totals.requests))  # fmt: skip
    for second in range(8):
        record_second(rng, aggregator, rng.sample(NAMES[:30], 10))
        if second == 3:
            hatch.append(ledger.reset())
        for reader in (old, new, kept):
            reader.sample()
    for reader in (old, new, kept):
        reader.finish()
    assert new.request_names
    for reader in (new, kept):
        assert sorted(reader.request_names) == sorted(old.request_names)
        for series in ("totals", "requests"):
            mine, theirs = getattr(reader, series), getattr(old, series)
            assert mine.columns.keys() == theirs.columns.keys()
            for key in theirs.columns:
                assert mine.column(key) == theirs.column(key), key


def shipped(ledger: Ledger, sequence: int) -> wire.Delta:
    """What a worker sends for the second that just ended, as the manager receives it."""
    delta = to_delta(ledger.take_delta(), sequence, users_running=5, final=False)
    return wire.Delta.FromString(delta.SerializeToString())


def test_reads_on_the_manager_equal_the_old_combined_result_across_the_hatch_reset() -> None:
    rng = random.Random(42)
    workers = [Aggregator() for _ in range(3)]
    ledgers = [Ledger(aggregator, shipping=True) for aggregator in workers]
    merged = MergedTally()
    totals = merged.run_totals()
    feed = totals.follow()
    fed = Metrics()
    hatch: Metrics | None = None
    for second in range(10):
        for number, (aggregator, ledger) in enumerate(zip(workers, ledgers, strict=True)):
            record_second(rng, aggregator, rng.sample(NAMES, 200 if second == 0 else 30))
            merged.merge(shipped(ledger, second * 3 + number + 1))
        if second == 4:
            hatch = merged.reset()
        if second % 3 == 2:
            continue  # deltas folded with no read between them
        old = Metrics.combined(hatch, merged.metrics())
        assert totals.metrics() == old
        assert totals.requests() == old.aggregated_requests()
        for delta in feed():
            fed.merge(delta)
        assert _counts(fed) == _counts(old)  # the feed's changes add up to the totals
    assert hatch is not None
    assert hatch.requests
    assert totals.metrics() is totals.metrics()


def _counts(metrics: Metrics) -> dict[object, object]:
    """What a feed's changes add up to: every count, bucket and code (not min and max, which
    a change carries as its row's)."""
    rows: dict[object, object] = {}
    for key, stats in [*metrics.requests.items(), *metrics.tasks.items()]:
        counts = {i: n for i, n in stats.histogram.counts.items() if n}
        rows[key] = (stats.success_count, stats.fail_count, stats.sum_us, counts,
                     stats.status_codes)  # fmt: skip
    rows["errors"], rows["dropped"] = metrics.errors, metrics.dropped
    rows["abandoned"] = (metrics.abandoned_requests, metrics.abandoned_tasks)
    rows["lag"] = (metrics.lag.count, metrics.lag.sum_us, metrics.lag.histogram.counts)
    return rows


class Pages(TaskSet):
    @task
    async def index(self) -> None:
        await self.get("/")


def test_reads_of_a_session_are_its_tally_s_whole_totals_before_and_after_the_hatch() -> None:
    console = Console(file=io.StringIO(), width=140)
    plan = Attack(Pages).plan({"host": "http://127.0.0.1:9", "users": 3}, console=console)
    runner = Runner(plan)
    rng = random.Random(9)
    source, live = runner.source(), runner.live_inputs()
    read: Callable[[], Metrics] = source.metrics

    def old() -> Metrics:
        return Metrics.combined(runner.hatch_metrics, runner.tally.metrics())

    record_second(rng, runner.ctx.aggregator, NAMES[:20])
    before = read()
    assert before == old()
    assert read() is before
    runner.hatched(3)  # the reset, as when every user runs
    assert runner.hatch_metrics is not None
    assert not runner.hatch_metrics.is_empty()
    assert runner.tally.metrics().is_empty()
    record_second(rng, runner.ctx.aggregator, NAMES[10:40])
    after = read()
    assert after == old()
    assert after is read()
    stats, errors = live.run_so_far()
    assert stats == old().aggregated_requests()
    assert errors == old().errors
    assert runner.abandoned() == {
        "requests": old().abandoned_requests,
        "tasks": old().abandoned_tasks,
    }


def test_reads_a_run_s_all_metrics_are_the_totals_it_kept(target: Target) -> None:
    console = Console(file=io.StringIO(), width=140)
    result = asyncio.run(
        Attack(Pages).run_async(
            console=console, host=target.url, users=4, hatch_rate=4, run_time=0.5
        )
    )
    assert result.hatch_metrics is not None
    assert not result.hatch_metrics.is_empty()
    whole = result.all_metrics()
    assert whole is result.all_metrics()  # handed over, not merged on each call
    assert whole == Metrics.combined(result.hatch_metrics, result.metrics)
