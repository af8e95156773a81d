"""An open model's timetable segments to and from the wire: what a manager tells its workers
when the schedule changes mid-run, and what a late worker needs to join the schedule in force.
Why a segment ends the run stays with the manager: a worker only stops following it."""

from __future__ import annotations

from collections.abc import Iterable

from gaggle.load.schedule import ArrivalSchedule, Ramp
from gaggle.load.timetable import Segment
from gaggle.wire import gaggle_pb2 as wire


def to_wire(segment: Segment) -> wire.Segment:
    ramps = [wire.Ramp(begin=r.begin, end=r.end, seconds=r.seconds) for r in segment.schedule.ramps]
    return wire.Segment(offset=segment.offset, first=segment.first, ramps=ramps)


def from_wire(message: wire.Segment) -> Segment:
    ramps = tuple(Ramp(r.begin, r.end, r.seconds) for r in message.ramps)
    return Segment(message.offset, message.first, ArrivalSchedule(ramps))


def timetable_from_wire(messages: Iterable[wire.Segment]) -> tuple[Segment, ...]:
    return tuple(from_wire(message) for message in messages)
