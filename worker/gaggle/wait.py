"""How long a user pauses after each task: ``between``, ``constant`` and ``pacing``.

Each is a small value with a readable ``repr`` because the repr is part of the test rules that
Gaggle mode hashes: two processes with different waits must not be mistaken for the same test.
"""

from __future__ import annotations

import random
from typing import Protocol


class WaitTime(Protocol):
    def __call__(self, task_seconds: float) -> float:
        """Seconds to wait, given how long the task just took."""
        ...


def _seconds(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{name}: {value!r} is not allowed; use a number of seconds ≥ 0")
    return float(value)


class between:  # noqa: N801 - reads as a function in a task set
    """A uniformly random pause of ``low``..``high`` seconds (the seed's 5 to 15 s)."""

    __slots__ = ("high", "low")

    def __init__(self, low: float, high: float) -> None:
        self.low = _seconds("between(low)", low)
        self.high = _seconds("between(high)", high)
        if self.high < self.low:
            raise ValueError(f"between({low!r}, {high!r}): high must be ≥ low")

    def __call__(self, task_seconds: float) -> float:
        return random.uniform(self.low, self.high)

    def __repr__(self) -> str:
        return f"between({self.low:g}, {self.high:g})"


class constant:  # noqa: N801
    """The same pause after every task."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = _seconds("constant(seconds)", seconds)

    def __call__(self, task_seconds: float) -> float:
        return self.seconds

    def __repr__(self) -> str:
        return f"constant({self.seconds:g})"


class pacing:  # noqa: N801
    """Tasks start every ``seconds`` (the pause shrinks by the task's own time; never below 0)."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = _seconds("pacing(seconds)", seconds)

    def __call__(self, task_seconds: float) -> float:
        return max(0.0, self.seconds - task_seconds)

    def __repr__(self) -> str:
        return f"pacing({self.seconds:g})"
