"""How a gaggle's users and hatch rate are shared among its workers.

10 users over 3 workers are 4, 3, 3 in worker-index order, and worker *i*'s first user is the sum
of the shares before it: user indexes (and with them the task-set allocation order) are global,
as one process would have numbered them. The hatch rate is shared in proportion to the users, so
every worker finishes hatching at the same moment.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Share:
    users: int
    first_user: int
    hatch_rate: float


def split_users(users: int, hatch_rate: float, workers: int) -> list[Share]:
    if workers < 1:
        raise ValueError("a gaggle needs at least one worker")
    base, extra = divmod(users, workers)
    shares: list[Share] = []
    first = 0
    for index in range(workers):
        count = base + (1 if index < extra else 0)
        shares.append(Share(count, first, hatch_rate * count / users if users else 0.0))
        first += count
    return shares
