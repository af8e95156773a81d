"""How a gaggle's users and hatch rate are shared among its workers.

10 users over 3 workers are 4, 3, 3 in worker-index order, and worker *i*'s first user is the sum
of the shares before it: user indexes (and with them the task-set allocation order) are global,
as one process would have numbered them. The hatch rate is shared in proportion to the users, so
every worker finishes hatching at the same moment.

An open model shares --max-users the same way, and its arrivals by turns: of the workers with at
least one user, worker *i* of *n* starts arrivals *i*, *i + n*, … of the one schedule — an equal
share of the rate (in proportion to the users, which differ by one at most), and together
exactly the arrivals one process would have started.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from gaggle.options import PER_WORKER_KEYS, RunConfig


@dataclass(frozen=True, slots=True)
class Share:
    users: int
    first_user: int
    hatch_rate: float
    arrival_first: int = 0
    arrival_stride: int = 0  # 0: no arrivals (a closed model, or a worker without users)


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


def split_arrivals(max_users: int, workers: int) -> list[Share]:
    """An open model's shares: the pool's bound split like users, the arrivals by turns."""
    shares = split_users(max_users, 1.0, workers)
    taking = sum(1 for share in shares if share.users)
    return [
        Share(share.users, share.first_user, 1.0, index, taking)
        if share.users
        else Share(0, share.first_user, 1.0)
        for index, share in enumerate(shares)
    ]


def shared_options(config: RunConfig) -> dict[str, object]:
    """The run's options every worker is given at the start: what differs from the defaults
    ("0 = off" values are not valid as options), less what each worker gets as its share."""
    defaults = RunConfig()
    return {
        key: value
        for key, value in dataclasses.asdict(config).items()
        if key not in PER_WORKER_KEYS
        and (key != "test_plan" or config.open_model)  # a rate plan's arrivals
        and (key != "users" or not config.open_model)  # the pool's bound: its own
        and value != getattr(defaults, key)
    }
