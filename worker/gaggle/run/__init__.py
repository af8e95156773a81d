"""One run's lifecycle, shared by every role: start, steer, stop in bounded time, judge, report.

- ``types``: ``RunPlan``, ``RunResult``, ``Aborted``, ``Tally`` — cheap to import.
- ``session``: ``Session``, the lifecycle a standalone run and a manager both specialise.
- ``runner``: ``Runner``, a session whose users run on this event loop (standalone, a worker).
- ``steering``: ``Steering``, the live changes the control API asks for (users, rate, plan…).
- ``open_model``: the open model's timetable state during a run.
- ``warnings``: the summary's warnings (coordinated omission, the latency note).
- ``process``: what a run's process needs around it: exit codes, logging, the event loop, the
  collector settled for a run.

A manager (``distributed.manager``) is a ``Session`` whose users are its workers'.
"""
