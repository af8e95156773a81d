"""The last few seconds of a run: per-reading deltas of the cumulative figures, in a ring.

The live view asks "how fast now, and how slow over the last 10 s?". Keeping every sample for
that would cost memory and time per request; instead a reader hands ``observe`` the run's
cumulative figures about once a second (what the tables read anyway), and the window keeps the
*difference* from the previous reading: a count, a failure count and a histogram delta. The
window's own histogram is the sum of the deltas it holds — a delta is added when it arrives and
subtracted when it ages out — so a percentile over the window costs one pass over its buckets,
and the cost is per reading, never per request. Merging is exact (integer bucket counts), so the
window's percentiles carry the histogram's stated error bound and nothing more.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from gaggle.metrics.histogram import Histogram

WINDOW_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Slice:
    """What happened between two readings."""

    ended: float  # the later reading's instant (seconds, any monotonic clock)
    seconds: float
    requests: int
    failures: int
    buckets: dict[int, int]  # histogram bucket index -> responses timed in this slice


class RollingWindow:
    """The slices of the last ``span`` seconds, and their histogram summed."""

    __slots__ = ("_failures", "_previous", "_requests", "_slices", "histogram", "span")

    def __init__(self, span: float = WINDOW_SECONDS) -> None:
        self.span = span
        self.histogram = Histogram()  # the sum of the slices' buckets
        self._slices: deque[Slice] = deque()
        self._requests = self._failures = 0  # summed over the slices
        # (instant, requests, failures, histogram total, histogram counts) of the last reading
        self._previous: tuple[float, int, int, int, dict[int, int]] | None = None

    def observe(self, at: float, requests: int, failures: int, histogram: Histogram) -> None:
        """Take a reading of the cumulative figures at instant ``at``."""
        counts = histogram.counts
        previous = self._previous
        self._previous = (at, requests, failures, histogram.total, dict(counts))
        if previous is None:
            return  # the first reading is the baseline
        then, requests_then, failures_then, total_then, counts_then = previous
        if requests < requests_then or histogram.total < total_then:
            self.clear()  # the figures started again from zero: nothing to difference
            self._previous = (at, requests, failures, histogram.total, dict(counts))
            return
        buckets = {i: d for i, n in counts.items() if (d := n - counts_then.get(i, 0)) > 0}
        self._add(Slice(at, at - then, requests - requests_then, failures - failures_then, buckets))
        while self._slices and self._slices[0].ended <= at - self.span:
            self._drop(self._slices.popleft())

    def clear(self) -> None:
        self._slices.clear()
        self.histogram = Histogram()
        self._requests = self._failures = 0
        self._previous = None

    def _add(self, piece: Slice) -> None:
        self._slices.append(piece)
        self._requests += piece.requests
        self._failures += piece.failures
        window = self.histogram.counts
        for index, count in piece.buckets.items():
            window[index] = window.get(index, 0) + count
        self.histogram.total += sum(piece.buckets.values())

    def _drop(self, piece: Slice) -> None:
        self._requests -= piece.requests
        self._failures -= piece.failures
        window = self.histogram.counts
        for index, count in piece.buckets.items():
            left = window[index] - count
            if left:
                window[index] = left
            else:
                del window[index]
        self.histogram.total -= sum(piece.buckets.values())

    # --- what a reader asks ------------------------------------------------------------------
    @property
    def seconds(self) -> float:
        """How many seconds the slices cover (less than ``span`` early in a run)."""
        return sum(piece.seconds for piece in self._slices)

    @property
    def requests(self) -> int:
        return self._requests

    @property
    def failures(self) -> int:
        return self._failures

    def rate(self) -> float:
        """Requests per second over the window."""
        seconds = self.seconds
        return self._requests / seconds if seconds > 0 else 0.0

    def last_rate(self) -> float:
        """Requests per second between the last two readings."""
        if not self._slices:
            return 0.0
        last = self._slices[-1]
        return last.requests / last.seconds if last.seconds > 0 else 0.0

    def percentile_us(self, quantile: float) -> int | None:
        """The response time at ``quantile`` over the window; None when nothing was timed."""
        if self.histogram.total <= 0:
            return None
        return self.histogram.value_at(quantile)
