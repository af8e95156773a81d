"""Per-name accumulators: counts, failures, sum/min/max, a histogram and status codes.

Everything here is additive so that deltas merge exactly: ``a.merge(b)`` is the same as having
recorded both streams into one accumulator. A ``set_failure`` flip is recorded as -1 success and
+1 failure, which stays additive across deltas.
"""

from __future__ import annotations

from typing import Any

from gaggle.metrics.histogram import Histogram

NO_MIN = 1 << 62  # "no sample yet": above any response time, so min() keeps the first


def ms(us: float) -> float:
    """Microseconds as milliseconds to 3 decimals: how reports and status show a time."""
    return round(us / 1000, 3)


class Stats:
    """One row of a table: a request name (with method) or a task."""

    __slots__ = (
        "fail_count",
        "histogram",
        "max_us",
        "min_us",
        "status_codes",
        "success_count",
        "sum_us",
    )

    def __init__(self) -> None:
        self.success_count = 0
        self.fail_count = 0
        self.sum_us = 0
        self.min_us = NO_MIN
        self.max_us = 0
        self.histogram = Histogram()
        self.status_codes: dict[int, int] = {}

    def record(self, time_us: int, success: bool, status_code: int | None = None) -> None:
        if success:
            self.success_count += 1
        else:
            self.fail_count += 1
        self.sum_us += time_us
        if time_us < self.min_us:
            self.min_us = time_us
        if time_us > self.max_us:
            self.max_us = time_us
        self.histogram.record(time_us)
        if status_code is not None:
            codes = self.status_codes
            codes[status_code] = codes.get(status_code, 0) + 1

    def flip(self, success: bool) -> None:
        """A recorded request changed its verdict (set_success / set_failure)."""
        change = 1 if success else -1
        self.success_count += change
        self.fail_count -= change

    def merge(self, other: Stats) -> None:
        self.success_count += other.success_count
        self.fail_count += other.fail_count
        self.sum_us += other.sum_us
        self.min_us = min(self.min_us, other.min_us)
        self.max_us = max(self.max_us, other.max_us)
        self.histogram.merge(other.histogram)
        codes = self.status_codes
        for code, count in other.status_codes.items():
            codes[code] = codes.get(code, 0) + count

    def copy(self) -> Stats:
        clone = Stats()
        clone.merge(self)
        return clone

    # --- derived figures, for reporters -------------------------------------------------
    @property
    def count(self) -> int:
        return self.success_count + self.fail_count

    @property
    def timed_count(self) -> int:
        """How many times were recorded (flips change verdicts, not timings)."""
        return self.histogram.total

    @property
    def min(self) -> int:
        return self.min_us if self.min_us != NO_MIN else 0

    @property
    def mean_us(self) -> float:
        return self.sum_us / self.timed_count if self.timed_count else 0.0

    def percentile_us(self, quantile: float) -> int:
        """Within the histogram's error bound, clamped to the exact min and max."""
        if not self.timed_count:
            return 0
        return max(self.min, min(self.max_us, self.histogram.value_at(quantile)))

    # --- plain data, for JSON and the wire ----------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "success_count": self.success_count,
            "fail_count": self.fail_count,
            "sum_us": self.sum_us,
            "min_us": self.min,
            "max_us": self.max_us,
            "histogram": [list(item) for item in self.histogram.items()],
            "status_codes": {str(code): n for code, n in sorted(self.status_codes.items())},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Stats:
        stats = cls()
        stats.success_count = int(data["success_count"])
        stats.fail_count = int(data["fail_count"])
        stats.sum_us = int(data["sum_us"])
        stats.histogram = Histogram.from_items((int(i), int(c)) for i, c in data["histogram"])
        stats.min_us = int(data["min_us"]) if stats.histogram.total else NO_MIN
        stats.max_us = int(data["max_us"])
        stats.status_codes = {int(k): int(v) for k, v in data["status_codes"].items()}
        return stats

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Stats):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Stats(count={self.count}, fails={self.fail_count}, mean_us={self.mean_us:.0f})"
