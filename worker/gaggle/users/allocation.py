"""Which task set each user (or arrival) runs, by weight.

Allocation follows the seed: weights are reduced by their greatest common divisor, then one cycle
of task-set indexes is built — ``round-robin`` interleaves task sets (A, B, A for weights 2:1),
``serial`` keeps definition order (A, A, B), ``random`` shuffles the cycle — and users take the
cycle's entries in turn: a closed model's by slot (``pool.UserPool``, one cycle after another),
an open model's by arrival number (``arrival_pool.ArrivalPool``, the same cycle over and over).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence


def allocation_cycle(weights: Sequence[int], scheduler: str, rng: random.Random) -> list[int]:
    """One cycle of task-set indexes for ``weights`` (reduced by their gcd), in ``scheduler``'s
    order; ``random`` shuffles it with ``rng``, so the seed fixes it."""
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
