"""A mergeable log-linear histogram of response times in microseconds.

Why our own: two workers' histograms must merge *exactly* (a sum of integer bucket counts), the
buckets must be the same everywhere without negotiation, and the hot path must be a few integer
operations. The layout is HdrHistogram's idea with fixed precision: values below 256 µs get a
bucket each; above that every power of two is split into 128 equal sub-buckets. A reported value
is the middle of its bucket, so it is within ``RELATIVE_ERROR`` (1/256 ≈ 0.4%) of the true value
(clamped to the recorded min and max). Memory is bounded by 128 buckets per power of two: about
3,000 buckets cover one microsecond to one hour, however many values are recorded.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Final

SUB_BUCKET_BITS = 7
_SUB = 1 << SUB_BUCKET_BITS  # 128 sub-buckets per power of two
# One int object per bucket index (every index of a value below 2**62 us), shared by every
# histogram's dict: a merge then finds a key by identity in one compact block instead of
# comparing with an int object of its own elsewhere in the heap (a cache miss per bucket: half
# a merge's time at 200 names of wide spread, benchmarks/reads.py).
BUCKET_KEYS: Final[tuple[Any, ...]] = tuple(range(56 << SUB_BUCKET_BITS))
_KEY_COUNT: Final = len(BUCKET_KEYS)
_EXACT_LIMIT = _SUB << 1  # values below 256 µs are stored exactly
RELATIVE_ERROR = 1 / (_SUB << 1)  # half a bucket over the bucket's lowest value


def bucket_index(value: int) -> int:
    """Bucket of a non-negative integer value (µs); contiguous and monotonic in ``value``."""
    if value < _EXACT_LIMIT:
        return value if value > 0 else 0
    shift = value.bit_length() - SUB_BUCKET_BITS - 1
    return (shift << SUB_BUCKET_BITS) + (value >> shift)


def bucket_bounds(index: int) -> tuple[int, int]:
    """The lowest and highest values (inclusive) that fall in bucket ``index``."""
    if index < _EXACT_LIMIT:
        return index, index
    shift = (index >> SUB_BUCKET_BITS) - 1
    low = (index - (shift << SUB_BUCKET_BITS)) << shift
    return low, low + (1 << shift) - 1


class Histogram:
    """Counts per bucket; ``merge`` adds counts, so merge(a, b) equals recording both streams."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.total = 0

    def record(self, value: int, count: int = 1) -> None:
        index = bucket_index(value)
        key: Any = BUCKET_KEYS[index] if index < _KEY_COUNT else index
        counts: dict[Any, int] = self.counts  # keys as the objects they are (compiled: not boxed)
        counts[key] = counts.get(key, 0) + count
        self.total += count

    def merge(self, other: Histogram) -> None:
        counts: dict[Any, int] = self.counts  # keys as the objects they are (see BUCKET_KEYS)
        theirs: dict[Any, int] = other.counts
        for key, count in theirs.items():
            counts[key] = counts.get(key, 0) + count
        self.total += other.total

    def value_at(self, quantile: float) -> int:
        """The value at ``quantile`` (0..1): the middle of the bucket holding rank ⌈q·n⌉."""
        return self.values_at((quantile,))[0]

    def values_at(self, quantiles: Sequence[float]) -> list[int]:
        """``value_at`` of each quantile, in their order, from one sort of the buckets (the
        timeline reads three of every row each second)."""
        if self.total <= 0:
            return [0] * len(quantiles)
        counts = self.counts
        indexes = sorted(counts)
        running = list(itertools.accumulate(map(counts.__getitem__, indexes)))
        last = len(indexes) - 1  # ranks past the counts (flipped totals): the last bucket
        values = []
        for quantile in quantiles:
            rank = max(1, math.ceil(quantile * self.total))
            low, high = bucket_bounds(indexes[min(bisect.bisect_left(running, rank), last)])
            values.append((low + high + 1) // 2)
        return values

    def items(self) -> Iterator[tuple[int, int]]:
        """(bucket index, count) pairs in index order: the wire and JSON form."""
        for index in sorted(self.counts):
            yield index, self.counts[index]

    @classmethod
    def from_items(cls, items: Iterable[tuple[int, int]]) -> Histogram:
        histogram = cls()
        for index, count in items:
            histogram.counts[index] = histogram.counts.get(index, 0) + count
            histogram.total += count
        return histogram

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        mine = {k: v for k, v in self.counts.items() if v}
        theirs = {k: v for k, v in other.counts.items() if v}
        return mine == theirs and self.total == other.total

    def __repr__(self) -> str:
        return f"Histogram(total={self.total}, buckets={len(self.counts)})"
