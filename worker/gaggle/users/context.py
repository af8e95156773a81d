"""What all users of one run share: config, clock, stop signal, throttle, aggregator and sinks."""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Protocol

from gaggle.kits import StopSignal
from gaggle.metrics import Aggregator
from gaggle.options import RunConfig
from gaggle.users.throttle import Throttle

log = logging.getLogger(__name__)


class Sink(Protocol):
    """A log that takes items on the hot path and writes them later, off the event loop."""

    def append(self, item: Any, /) -> None: ...


@dataclass(slots=True)
class RunContext:
    config: RunConfig
    aggregator: Aggregator
    stop: StopSignal = field(default_factory=StopSignal)
    throttle: Throttle | None = None
    requests_log: Sink | None = None
    debug_log: Sink | None = None
    started: float = field(default_factory=time.perf_counter)
    _seen_errors: set[tuple[str, ...]] = field(default_factory=set)

    def elapsed_ms(self, at: float) -> int:
        return int((at - self.started) * 1000)

    def task_failed(self, where: str, error: BaseException) -> None:
        """Count a task's exception; log it with its traceback the first time it is seen."""
        summary = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        frames = traceback.extract_tb(error.__traceback__)
        origin = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else ""
        key = (where, summary, origin)
        self.aggregator.record_error(f"{where}: {summary}")
        if key not in self._seen_errors:
            self._seen_errors.add(key)
            log.error(
                "%s raised %s (logged once; later occurrences are counted)\n%s",
                where,
                summary,
                "".join(traceback.format_exception(error)).rstrip(),
            )
