"""``LoadShape``: a load that code decides, tick by tick (Locust's LoadTestShape).

    class Spike(LoadShape):
        def tick(self, elapsed_seconds: float) -> Stage | None:
            if elapsed_seconds < 60:
                return Stage(users=10, hatch_rate=5)
            if elapsed_seconds < 90:
                return Stage(users=100, hatch_rate=50)
            return None  # the run ends

A test file defines at most one. The run asks ``tick`` every ``tick_interval`` seconds; users
are started or stopped at the stage's hatch rate until they match. A tick that returns anything
but a Stage or None is the test's mistake: it is refused before the run (``tick(0)`` is asked
once when the test is checked) and, mid-run, ends the run with the same message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gaggle.errors import TestDefinitionError


@dataclass(frozen=True, slots=True)
class Stage:
    """What a tick asks for: ``users`` running, reached at ``hatch_rate`` users per second."""

    users: int
    hatch_rate: float = 1.0


class LoadShape:
    """Subclass it in a test file and define ``tick``; Gaggle finds it like a task set."""

    tick_interval: float = 1.0  # seconds between two ticks; the run re-reads the shape this often

    def tick(self, elapsed_seconds: float) -> Stage | None:
        """The stage for ``elapsed_seconds`` since the run started; None ends the run."""
        raise NotImplementedError


def checked_stage(shape: LoadShape, elapsed: float) -> Stage | None:
    """``shape.tick(elapsed)``, or TestDefinitionError naming the class, the elapsed time and
    what a tick may return."""
    name = type(shape).__name__
    where = f"{name}.tick({elapsed:.1f})"
    allowed = "return gaggle.Stage(users ≥ 0, hatch_rate > 0), or None to end the run"
    try:
        stage = shape.tick(elapsed)
    except Exception as error:
        raise TestDefinitionError(
            f"load shape {where} raised {type(error).__name__}: {error}; {allowed}"
        ) from None
    if stage is None:
        return None
    if not isinstance(stage, Stage):
        raise TestDefinitionError(
            f"load shape {where} returned {stage!r} ({type(stage).__name__}); {allowed}"
        )
    users, rate = stage.users, stage.hatch_rate
    if isinstance(users, bool) or not isinstance(users, int) or users < 0:
        raise TestDefinitionError(f"load shape {where} returned users={users!r}; {allowed}")
    rate_ok = isinstance(rate, int | float) and not isinstance(rate, bool)
    if not rate_ok or not 0 < rate < math.inf:
        raise TestDefinitionError(f"load shape {where} returned hatch_rate={rate!r}; {allowed}")
    return stage


def validate_shape(shape: type[LoadShape]) -> type[LoadShape]:
    """Refuse a shape before any load: not a LoadShape, a bad tick interval, a bad first tick."""
    if not (isinstance(shape, type) and issubclass(shape, LoadShape)):
        raise TestDefinitionError(f"{shape!r} is not a LoadShape subclass")
    interval = shape.tick_interval
    if isinstance(interval, bool) or not isinstance(interval, int | float) or not interval > 0:
        raise TestDefinitionError(
            f"load shape {shape.__name__}: tick_interval={interval!r} is not allowed; "
            "use seconds > 0"
        )
    checked_stage(new_shape(shape), 0.0)
    return shape


def new_shape(shape: type[LoadShape]) -> LoadShape:
    try:
        return shape()
    except Exception as error:
        raise TestDefinitionError(
            f"load shape {shape.__name__}() raised {type(error).__name__}: {error}"
        ) from None
