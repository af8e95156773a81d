"""The simulated users of one event loop: the hot path from a task to a request's record.

- ``user``: ``User`` (one simulated user: its client, cookies, verdicts) and ``run_user``, its
  lifecycle in both load models, fed its passes by an ``Iterations``; ``task_on_stack``, the
  task a stalled loop is in (``run.loop_watch`` asks).
- ``context``: ``RunContext``, what every user of the run shares (config, aggregator, stop).
- ``throttle``: ``--throttle-requests``, the run's request budget per second.
- ``allocation``: which task set each user (or arrival) runs, by weight.
- ``pool``: ``Pool``, what both pools share; ``UserPool``, the closed model's users by slot,
  started and stopped as load changes (``UntilStopped``: their passes; ``Hatch``: -u of them);
  ``end_users``: the run's stop, bounded by --stop-timeout.
- ``arrival_pool``: ``ArrivalPool``, the open model's users, taken by arrivals as they fall due
  (``PerArrival``: their passes).
"""

from gaggle.users.arrival_pool import ArrivalPool
from gaggle.users.context import RunContext
from gaggle.users.pool import Hatch, UserPool, end_users
from gaggle.users.throttle import Throttle
from gaggle.users.user import task_on_stack

__all__ = [
    "ArrivalPool",
    "Hatch",
    "RunContext",
    "Throttle",
    "UserPool",
    "end_users",
    "task_on_stack",
]
