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

from gaggle.load.drive_arrivals import StageMarks, follow_arrivals, mark_stages
from gaggle.load.drive_users import Crowd, follow_plan, follow_shape, pace
from gaggle.load.schedule import ArrivalSchedule, Ramp
from gaggle.load.shape import LoadShape, Stage, validate_shape
from gaggle.load.stages import PlanStage, canonical, is_rate_plan, peak_users, stages
from gaggle.load.timetable import PLAN_OVER, RUN_TIME_OVER, Segment, Timetable

__all__ = [
    "PLAN_OVER",
    "RUN_TIME_OVER",
    "ArrivalSchedule",
    "Crowd",
    "LoadShape",
    "PlanStage",
    "Ramp",
    "Segment",
    "Stage",
    "StageMarks",
    "Timetable",
    "canonical",
    "follow_arrivals",
    "follow_plan",
    "follow_shape",
    "is_rate_plan",
    "mark_stages",
    "pace",
    "peak_users",
    "stages",
    "validate_shape",
]
