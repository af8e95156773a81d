"""What the engine's allocation gives a run's first users, in one list: the tests' reference.

The engine takes one cycle at a time as slots need it (``gaggle.users.pool.UserPool.taskset_of``);
the tests compare whole runs of users, so this lays the cycles end to end.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from gaggle.users.allocation import allocation_cycle


def allocate(
    users: int, weights: Sequence[int], scheduler: str, rng: random.Random | None = None
) -> list[int]:
    """The task-set index of each of ``users`` users, in launch order."""
    rng = rng or random.Random()
    allocation: list[int] = []
    while len(allocation) < users:
        allocation.extend(allocation_cycle(weights, scheduler, rng))
    return allocation[:users]
