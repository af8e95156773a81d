"""When an open model's arrivals are due: ``--arrival-rate R`` or a plan of rates.

A rate plan's stage goes linearly from the previous stage's rate (0 at first) to its own over
its duration, as k6's ramping-arrival-rate does; ``--arrival-rate R`` is one stage at R from the
start, for ``-t`` (or until stopped). Arrivals are numbered 0, 1, 2… over the whole run, and
arrival *k* is due at the instant *t* where the arrivals so far, ∫rate, reach *k*: at a constant
4/s for 2 s those are 0, 0.25 … 1.75 s — 8 arrivals, the first at once. The instants are a pure
function of the plan, so a gaggle's workers can each take every n-th arrival of one schedule and
together start exactly what one process would have.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from gaggle.load.stages import PlanStage


@dataclass(frozen=True, slots=True)
class Ramp:
    """From ``begin`` to ``end`` arrivals per second, linearly, over ``seconds`` (inf: forever)."""

    begin: float
    end: float
    seconds: float

    @property
    def arrivals(self) -> float:
        """How many arrivals the ramp holds (a fraction: the next ramp goes on counting)."""
        return self.seconds * (self.begin + self.end) / 2

    def rate_at(self, offset: float) -> float:
        if self.seconds <= 0 or math.isinf(self.seconds):
            return self.end
        return self.begin + (self.end - self.begin) * offset / self.seconds

    def offset_of(self, arrivals: float) -> float:
        """Seconds into the ramp at which ``arrivals`` (from its start) have come due."""
        if arrivals <= 0:
            return 0.0
        if math.isinf(self.seconds):
            return arrivals / self.end
        half_slope = (self.end - self.begin) / (2 * self.seconds)
        # begin·t + half_slope·t² = arrivals, in the form that is stable as the slope nears 0
        root = math.sqrt(max(0.0, self.begin * self.begin + 4 * half_slope * arrivals))
        return 2 * arrivals / (self.begin + root)


@dataclass(frozen=True, slots=True)
class ArrivalSchedule:
    ramps: tuple[Ramp, ...]

    @classmethod
    def constant(cls, rate: float, seconds: float) -> ArrivalSchedule:
        """``--arrival-rate`` for ``-t`` seconds (0: until the run stops)."""
        return cls((Ramp(rate, rate, seconds if seconds > 0 else math.inf),))

    @classmethod
    def of_plan(cls, stages: tuple[PlanStage, ...], begin: float = 0.0) -> ArrivalSchedule:
        """A plan of rates; its first stage ramps from ``begin`` (a plan given mid-run starts
        from the rate asked then, as a plan of users starts from the users running)."""
        ramps, rate = [], begin
        for stage in stages:
            end = stage.rate or 0.0
            ramps.append(Ramp(rate, end, stage.seconds))
            rate = end
        return cls(tuple(ramps))

    @property
    def seconds(self) -> float:
        return sum(ramp.seconds for ramp in self.ramps)

    def rate_at(self, offset: float) -> float:
        """Arrivals per second the schedule asks for ``offset`` seconds after its start."""
        begun = 0.0
        for ramp in self.ramps:
            if offset < begun + ramp.seconds:
                return ramp.rate_at(offset - begun)
            begun += ramp.seconds
        return 0.0

    def offset_of(self, number: int) -> float | None:
        """Seconds from the start at which arrival ``number`` is due (None: past the end)."""
        counted, begun = 0.0, 0.0
        for ramp in self.ramps:
            holds = ramp.arrivals
            if number < counted + holds:
                offset = ramp.offset_of(number - counted)
                return begun + offset if offset < ramp.seconds else None
            counted += holds
            begun += ramp.seconds
        return None

    def due_before(self, seconds: float) -> int:
        """How many arrivals are due before ``seconds`` from the start: the number of the first
        one due then or later. The same arithmetic as ``offsets``, so a role that replaces the
        schedule at that instant and the workers that still follow it agree to the arrival."""
        if seconds <= 0:
            return 0
        counted, begun, arrivals = 0.0, 0.0, 0.0
        for ramp in self.ramps:
            if seconds < begun + ramp.seconds:
                offset = seconds - begun
                arrivals = counted + offset * (ramp.begin + ramp.rate_at(offset)) / 2
                break
            counted += ramp.arrivals
            begun += ramp.seconds
        else:
            arrivals = counted
        number = max(0, math.ceil(arrivals) - 1)  # near the answer; float rounding decides
        while number > 0 and not _before(self.offset_of(number - 1), seconds):
            number -= 1
        while _before(self.offset_of(number), seconds):
            number += 1
        return number

    def rest(self, offset: float, seconds: float) -> ArrivalSchedule:
        """What is left from ``offset`` on, lasting ``seconds`` (inf: forever): cut short, or
        held at its last rate when it would have ended sooner — a run time changed mid-run."""
        ramps: list[Ramp] = []
        begun, left = 0.0, seconds
        for ramp in self.ramps:
            ends = begun + ramp.seconds
            if ends > offset and left > 0:
                into = max(0.0, offset - begun)
                take = min(ramp.seconds - into, left)
                ramps.append(Ramp(ramp.rate_at(into), ramp.rate_at(into + take), take))
                left -= take
            begun = ends
        if left > 0:
            last = self.ramps[-1].end if self.ramps else 0.0
            ramps.append(Ramp(last, last, left))
        return ArrivalSchedule(tuple(ramps))

    def offsets(self, first: int = 0, stride: int = 1) -> Iterator[tuple[int, float]]:
        """(arrival number, seconds from the start) of arrivals ``first``, ``first + stride``…
        in order; arrivals at a ramp's end belong to the next ramp (none after the last)."""
        number, counted, begun = first, 0.0, 0.0
        for ramp in self.ramps:
            holds = ramp.arrivals
            while number < counted + holds:
                offset = ramp.offset_of(number - counted)
                if offset >= ramp.seconds:  # rounding at the ramp's very end: the next one's
                    break
                yield number, begun + offset
                number += stride
            counted += holds
            begun += ramp.seconds

    def count(self) -> int:
        """How many arrivals the whole schedule holds (a finite one)."""
        return sum(1 for _ in self.offsets())


def _before(offset: float | None, seconds: float) -> bool:
    return offset is not None and offset < seconds
