"""The histogram's promises: contiguous buckets, a stated error bound, exact merges."""

from __future__ import annotations

import math
import random

import pytest

from gaggle.metrics.histogram import RELATIVE_ERROR, Histogram, bucket_bounds, bucket_index


def test_buckets_are_contiguous_and_contain_their_values() -> None:
    previous_high = -1
    for index in range(0, 128 * 40):
        low, high = bucket_bounds(index)
        assert low == previous_high + 1, index
        assert bucket_index(low) == index
        assert bucket_index(high) == index
        previous_high = high


def test_small_values_are_exact() -> None:
    for value in range(256):
        assert bucket_bounds(bucket_index(value)) == (value, value)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_reported_values_are_within_the_stated_relative_error(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(20_000):
        value = int(10 ** rng.uniform(0, 10))  # 1 µs .. ~3 hours
        histogram = Histogram()
        histogram.record(value)
        reported = histogram.value_at(0.5)
        assert abs(reported - value) <= RELATIVE_ERROR * value + 0.5, (value, reported)


def test_quantiles_match_exact_order_statistics_within_the_bound() -> None:
    rng = random.Random(7)
    values = [int(rng.lognormvariate(9, 1.2)) for _ in range(50_000)]
    histogram = Histogram()
    for value in values:
        histogram.record(value)
    ordered = sorted(values)
    for quantile in (0.5, 0.75, 0.9, 0.98, 0.99, 0.999, 0.9999):
        exact = ordered[max(1, math.ceil(quantile * len(ordered))) - 1]
        assert abs(histogram.value_at(quantile) - exact) <= RELATIVE_ERROR * exact + 0.5


def test_merge_equals_recording_everything_in_one() -> None:
    rng = random.Random(11)
    streams = [[rng.randrange(0, 5_000_000) for _ in range(3000)] for _ in range(4)]
    merged, single = Histogram(), Histogram()
    for stream in streams:
        part = Histogram()
        for value in stream:
            part.record(value)
            single.record(value)
        merged.merge(part)
    assert merged == single
    assert merged.total == sum(len(s) for s in streams)
    assert Histogram.from_items(merged.items()) == single


def test_memory_is_bounded_by_the_range_not_the_count() -> None:
    histogram = Histogram()
    rng = random.Random(3)
    for _ in range(200_000):
        histogram.record(rng.randrange(0, 3_600_000_000))  # up to one hour in µs
    assert len(histogram.counts) <= 128 * 26


def test_empty_histogram_reports_zero() -> None:
    assert Histogram().value_at(0.99) == 0


def test_values_at_gives_each_quantile_the_middle_of_its_ranks_bucket() -> None:
    """The timeline reads p50/p95/p99 of every row each second from one pass (``values_at``):
    each quantile, in the order asked (duplicates too), is the middle of the bucket of the value
    at rank ⌈q·n⌉ among everything recorded, as ``value_at`` gives it."""
    rng = random.Random(7)
    quantiles = [0.0, 0.5, 0.95, 0.99, 1.0, 0.5, 0.001, 0.999]
    for _ in range(200):
        histogram, values = Histogram(), []
        for _ in range(rng.randrange(1, 300)):
            values.append(int(10 ** rng.uniform(0, 9)))
            histogram.record(values[-1])
        values.sort()
        order = rng.sample(quantiles, len(quantiles))
        expected = []
        for q in order:
            low, high = bucket_bounds(bucket_index(values[max(1, math.ceil(q * len(values))) - 1]))
            expected.append((low + high + 1) // 2)
        assert histogram.values_at(order) == expected
        assert [histogram.value_at(q) for q in order] == expected
    assert Histogram().values_at([0.5, 0.99]) == [0, 0]
