"""One run's lifecycle, shared by every role: start, steer, stop in bounded time, judge, report.

- ``types``: ``RunPlan``, ``LoadKind``, ``RunResult``, ``Aborted``, ``Tally``: their home.
- ``session``: ``Session``, the lifecycle a standalone run and a manager both specialise.
- ``runner``: ``Runner``, a session whose users run on this event loop (standalone, a worker).
- ``steering``: ``Steering``, the live changes the control API asks for (users, rate, plan…).
- ``open_model``: the open model's timetable state during a run.
- ``warnings``: the summary's warnings (coordinated omission, the latency note).
- ``loop_watch``: ``LoopWatch``, this process's event loop lag, and the task that blocked it.
- ``process``: what a run's process needs around it: exit codes, logging, the event loop, the
  collector settled for a run.

A manager (``distributed.manager``) is a ``Session`` whose users are its workers'.
"""

from gaggle.run.process import (
    EXIT_ABORTED,
    EXIT_CRASH,
    EXIT_THRESHOLDS,
    fail,
    make_console,
    print_rules,
    run_on_best_loop,
    setup_logging,
)
from gaggle.run.runner import Runner
from gaggle.run.session import Session
from gaggle.run.types import Aborted, RunPlan, RunResult, iterations_over

__all__ = [
    "EXIT_ABORTED",
    "EXIT_CRASH",
    "EXIT_THRESHOLDS",
    "Aborted",
    "RunPlan",
    "RunResult",
    "Runner",
    "Session",
    "fail",
    "iterations_over",
    "make_console",
    "print_rules",
    "run_on_best_loop",
    "setup_logging",
]
