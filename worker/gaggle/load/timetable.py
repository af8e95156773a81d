"""An open model's arrivals over the whole run: the schedule it started with and those that
replaced it mid-run.

A change (the control API's arrival rate, plan of rates or run time) replaces the schedule from
an instant on: arrivals due before it are the old schedule's, the rest the new one's, numbered on
from the old one's count. So the task-set allocation and a gaggle's turns (worker *i* of *n*
takes every *n*-th number) go on unbroken, and a manager and its workers — which started at one
instant and count instants from it — agree on every arrival. A manager sets the instant a moment
ahead so its workers hear of the change before it is due; one that hears late skips the numbers
it already started, so no number starts twice.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from gaggle.kits import Sleepers, wake
from gaggle.load.schedule import ArrivalSchedule

PLAN_OVER = "the test plan is over"
RUN_TIME_OVER = "run time elapsed"


@dataclass(frozen=True, slots=True)
class Segment:
    """``schedule`` in force from ``offset`` seconds after the run's start, its first arrival
    numbered ``first``; when it is over the run ends, for ``ends_run``."""

    offset: float
    first: int
    schedule: ArrivalSchedule
    ends_run: str = RUN_TIME_OVER

    @property
    def ends(self) -> float:
        return self.offset + self.schedule.seconds


class Timetable:
    def __init__(self, segments: Sequence[Segment]) -> None:
        self.segments = list(segments)
        self.sleepers: Sleepers = set()  # followers to wake on a change
        self.version = 0  # counts the changes: a follower sees one came while it slept

    @classmethod
    def starting(cls, schedule: ArrivalSchedule, ends_run: str) -> Timetable:
        return cls([Segment(0.0, 0, schedule, ends_run)])

    def in_force(self, offset: float) -> Segment:
        """The segment that says the arrivals due at ``offset``."""
        found = self.segments[0]
        for segment in self.segments:
            if segment.offset <= offset:
                found = segment
        return found

    def next_after(self, segment: Segment) -> float:
        """When ``segment`` gives way to the next (inf: it is the last)."""
        later = [s.offset for s in self.segments if s.offset > segment.offset]
        return min(later, default=math.inf)

    def rate_at(self, offset: float) -> float:
        segment = self.in_force(offset)
        return segment.schedule.rate_at(offset - segment.offset)

    def number_at(self, offset: float) -> int:
        """The number of the first arrival due at ``offset`` or later."""
        segment = self.in_force(offset)
        return segment.first + segment.schedule.due_before(offset - segment.offset)

    @property
    def ends(self) -> float:
        """When the last arrival's schedule is over and the run with it (inf: at a stop)."""
        return self.segments[-1].ends

    @property
    def ends_run(self) -> str:
        return self.segments[-1].ends_run

    def replace(self, offset: float, schedule: ArrivalSchedule, ends_run: str) -> Segment:
        """From ``offset`` on, ``schedule`` (the later segments it overtakes are dropped)."""
        segment = Segment(offset, self.number_at(offset), schedule, ends_run)
        self.add(segment)
        return segment

    def add(self, segment: Segment) -> None:
        """A segment decided elsewhere (a worker hears its manager's)."""
        self.segments = [s for s in self.segments if s.offset < segment.offset] + [segment]
        self.version += 1
        wake(self.sleepers)

    def since(self, offset: float) -> list[Segment]:
        """What a worker joining at ``offset`` needs: the segment in force then and later ones."""
        current = self.in_force(offset)
        return [s for s in self.segments if s.offset >= current.offset]

    def arrivals(
        self, segment: Segment, number: int, first: int, stride: int
    ) -> Iterator[tuple[int, float]]:
        """(number, offset from the run's start) of ``segment``'s arrivals from ``number`` on
        that are this follower's turn (``first`` of every ``stride``) and are due before the
        segment gives way."""
        local = max(0, number - segment.first)
        local += (first - segment.first - local) % stride  # the next that is this one's turn
        until = self.next_after(segment)
        for local_number, offset in segment.schedule.offsets(local, stride):
            due = segment.offset + offset
            if due >= until:
                return
            yield segment.first + local_number, due
