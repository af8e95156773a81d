"""How much load and when: pure values (plans, shapes, schedules) and the drivers that follow them.

- ``stages``: a staged plan (``--test-plan``) as values, and its canonical text read back.
- ``shape``: a ``LoadShape`` (user code ticking the users and their rate) and its checked ticks.
- ``schedule``: an open model's arrival schedule (constant rate, or a ramp of rate stages).
- ``timetable``: the schedules in force over a run, replaced from an instant on by a change.
- ``drive_users``: the closed model's drivers — pace users to a number, follow a plan or shape.
- ``drive_arrivals``: the open model's driver — start arrivals on the timetable's instants.

Drivers only say how many users or when an arrival is due; ``users`` (or a manager's workers)
make it so. So this room imports no users, options or run.
"""
