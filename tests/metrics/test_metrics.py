"""Deltas merge exactly: merge(drain(a), drain(b)) == record(a + b), flips included."""

from __future__ import annotations

import json
import random

from gaggle.metrics import Aggregator, Metrics, RequestRecord, Stats, TaskRecord


def _record(rng: random.Random, user: int) -> RequestRecord:
    status = rng.choice([200, 200, 200, 302, 404, 500, 0])
    return RequestRecord(
        elapsed=rng.randrange(100_000),
        method=rng.choice(["GET", "POST"]),
        name=rng.choice(["/", "/about/", "/login"]),
        url="http://127.0.0.1/x",
        final_url="http://127.0.0.1/x",
        redirected=False,
        response_time_us=rng.randrange(50, 2_000_000),
        status_code=status,
        success=200 <= status < 400,
        update=False,
        user=user,
        error="" if status else "connect error",
    )


def _task(rng: random.Random) -> TaskRecord:
    return TaskRecord(0, rng.randrange(2), rng.randrange(3), "t", rng.randrange(10_000), True, 0)


def test_drained_deltas_merge_to_the_same_metrics_as_one_aggregator() -> None:
    rng = random.Random(5)
    records = [_record(rng, i % 7) for i in range(5000)]
    tasks = [_task(rng) for _ in range(2000)]
    single = Aggregator()
    for record in records:
        single.record_request(record)
    for task_record in tasks:
        single.record_task(task_record)

    # Two "workers", each draining several deltas at arbitrary points.
    merged = Metrics()
    for worker in range(2):
        aggregator = Aggregator()
        for index, record in enumerate(records[worker::2]):
            aggregator.record_request(record)
            if index % 617 == 0:
                merged.merge(aggregator.drain())
        for task_record in tasks[worker::2]:
            aggregator.record_task(task_record)
        merged.merge(aggregator.drain())
    assert merged == single.drain()


def test_a_flip_in_a_later_delta_still_merges_exactly() -> None:
    rng = random.Random(9)
    record = _record(rng, 1)
    record = RequestRecord(**{**_fields(record), "status_code": 200, "success": True, "error": ""})
    aggregator = Aggregator()
    aggregator.record_request(record)
    first = aggregator.drain()
    flipped = RequestRecord(**{**_fields(record), "success": False, "update": True})
    aggregator.flip_request(flipped)
    total = Metrics()
    total.merge(first)
    total.merge(aggregator.drain())
    stats = total.requests[(record.method, record.name)]
    assert (stats.success_count, stats.fail_count, stats.count) == (0, 1, 1)
    assert stats.status_codes == {200: 1}


def _fields(record: RequestRecord) -> dict[str, object]:
    return record._asdict()


def test_metrics_survive_a_json_round_trip() -> None:
    rng = random.Random(2)
    aggregator = Aggregator()
    for i in range(1000):
        aggregator.record_request(_record(rng, i))
        aggregator.record_task(_task(rng))
    metrics = aggregator.drain()
    assert Metrics.from_dict(json.loads(json.dumps(metrics.to_dict()))) == metrics


def test_stats_min_max_mean_are_exact() -> None:
    stats = Stats()
    for value in (300, 100, 200):
        stats.record(value, True, 200)
    assert (stats.min, stats.max_us, stats.mean_us, stats.count) == (100, 300, 200.0, 3)
    assert stats.percentile_us(0.0) >= 100
    assert stats.percentile_us(1.0) == 300


def test_distinct_errors_are_counted_not_stored_per_occurrence() -> None:
    aggregator = Aggregator()
    rng = random.Random(4)
    failing = [r for r in (_record(rng, 0) for _ in range(3000)) if not r.success]
    for record in failing:
        aggregator.record_request(record)
    errors = aggregator.drain().errors
    assert sum(errors.values()) == len(failing)
    assert len(errors) <= 3 * 2 * 3  # names × methods × kinds of failure
