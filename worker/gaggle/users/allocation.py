"""Which task set each user gets, and when each user starts.

Allocation follows the seed: weights are reduced by their greatest common divisor, then one cycle
of task-set indexes is built — ``round-robin`` interleaves task sets (A, B, A for weights 2:1),
``serial`` keeps definition order (A, A, B), ``random`` shuffles the cycle — and users take the
cycle's entries in turn. Hatching starts user *i* at ``i / hatch_rate`` seconds.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence

from gaggle.kits.stop import StopSignal


def allocation_cycle(weights: Sequence[int], scheduler: str, rng: random.Random) -> list[int]:
    divisor = math.gcd(*weights) if weights else 1
    counts = [w // divisor for w in weights]
    if scheduler == "serial":
        return [i for i, n in enumerate(counts) for _ in range(n)]
    if scheduler == "round-robin":
        cycle: list[int] = []
        for round_ in range(max(counts, default=0)):
            cycle.extend(i for i, n in enumerate(counts) if n > round_)
        return cycle
    if scheduler == "random":
        cycle = [i for i, n in enumerate(counts) for _ in range(n)]
        rng.shuffle(cycle)
        return cycle
    raise ValueError(f"unknown scheduler {scheduler!r}")


def allocate(
    users: int, weights: Sequence[int], scheduler: str, rng: random.Random | None = None
) -> list[int]:
    """The task-set index of each of ``users`` users, in launch order."""
    rng = rng or random.Random()
    allocation: list[int] = []
    while len(allocation) < users:
        allocation.extend(allocation_cycle(weights, scheduler, rng))
    return allocation[:users]


async def hatch(
    users: int, hatch_rate: float, stop: StopSignal, launch: Callable[[int], object]
) -> int:
    """Call ``launch(i)`` for each user on schedule; return how many were launched."""
    started = time.monotonic()
    for index in range(users):
        if stop.is_set():
            return index
        delay = started + index / hatch_rate - time.monotonic()
        if delay > 0:
            await stop.sleep(delay)
            if stop.is_set():
                return index
        launch(index)
    return users
