"""The event loop watched, in every process (a standalone run, a worker, a manager): how late
its timers fire, and which task blocked it.

Why: a task that blocks the loop (``time.sleep``, CPU work) stalls every user of the process,
and every response time measured meanwhile includes the stall; nothing else would say so (review
D13). A timer every ``TICK`` seconds measures the lag (how late it fired): the run's worst, and
the worst of the last ``RECENT`` seconds for gauges and a worker's heartbeats. A watchdog thread
looks at the loop's stack while a tick is overdue; a stall it saw inside the same task on two
looks ``CONFIRM`` apart and that lasted ``BLOCKED`` is that task's, warned once per task. The
thread gets the GIL only while the loop waits in a blocking call or runs Python (CPU work), and
two looks must agree: a process merely starved by a busy machine is seldom taken for a blocking
task. The hot path publishes nothing: the task is read from the stack (``users.task_on_stack``)
only when the loop stalls (a store per task would name the task that started last).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time

from gaggle.users import task_on_stack

log = logging.getLogger(__name__)

TICK = 0.1  # seconds between the timers whose lateness is the lag
POLL = 0.05  # seconds between the watchdog's looks
OVERDUE = 0.1  # a tick this late: the watchdog looks at the stack
CONFIRM = 0.2  # two looks this far apart in the same task: the task blocks
BLOCKED = 0.5  # a confirmed stall this long is warned of, when it ends
STILL_BLOCKED = 5.0  # or while it lasts, past this
RECENT = 2.0  # seconds the worst recent lag is kept (a heartbeat each second sees it)
ADVICE = (
    "a task must not block: await asyncio.sleep() rather than time.sleep(), and run blocking or "
    "CPU-heavy work with await asyncio.to_thread(...)"
)


class LoopWatch:
    """``start`` on the loop, ``stop`` when the run ends; ``worst`` and ``recent()`` may be
    read from any thread."""

    def __init__(self) -> None:
        self.worst = 0.0  # seconds: how late a tick fired at worst, this run
        self._recent = (0.0, 0.0)  # (worst lag of the last RECENT seconds, when it was seen)
        self._next = (0, float("inf"))  # (tick number, perf_counter when it is due)
        self._blamed: tuple[int, str, str] | None = None  # (tick, task, where) of a stall
        self._warned: set[str] = set()  # tasks warned of: once each
        self._timer: asyncio.TimerHandle | None = None
        self._stopped = threading.Event()

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._schedule(loop, 0)
        thread = threading.Thread(
            target=self._watch, args=(threading.get_ident(),), name="gaggle-loop-watch", daemon=True
        )
        thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._timer is not None:
            self._timer.cancel()

    def recent(self) -> float:
        """The worst lag of the last ``RECENT`` seconds, or of a stall going on now."""
        (lag, at), (_, due) = self._recent, self._next
        now = time.perf_counter()
        stalled = 0.0 if self._stopped.is_set() else now - due
        return max(lag if now - at <= RECENT else 0.0, stalled)

    def _schedule(self, loop: asyncio.AbstractEventLoop, number: int) -> None:
        self._next = (number, time.perf_counter() + TICK)
        self._timer = loop.call_later(TICK, self._tick, loop)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        number, due = self._next
        now = time.perf_counter()
        lag = max(0.0, now - due)
        self.worst = max(self.worst, lag)
        if lag >= self._recent[0] or now - self._recent[1] > RECENT:
            self._recent = (lag, now)
        blamed = self._blamed
        if blamed is not None and blamed[0] == number and lag >= BLOCKED:
            _, task, where = blamed
            self._warn(
                task,
                f"the event loop was blocked for at least {lag:.1f} s while task {task} ran (at "
                f"{where}): every user of this process waited, and times measured meanwhile "
                "include the wait",
            )
        self._schedule(loop, number + 1)

    def _watch(self, loop_thread: int) -> None:
        """The watchdog: looks at the loop's stack while a tick is overdue."""
        first: tuple[int, str, float] | None = None  # (tick, task, when) of the stall's first look
        while not self._stopped.wait(POLL):
            number, due = self._next
            now = time.perf_counter()
            if now - due < OVERDUE:
                continue
            found = task_on_stack(sys._current_frames().get(loop_thread))
            if found is None:
                first = None
                continue
            task, where = found
            if first is None or first[0] != number or first[1] != task:
                first = (number, task, now)
            elif now - first[2] >= CONFIRM:
                self._blamed = (number, task, where)
                if now - due >= STILL_BLOCKED:
                    self._warn(
                        task,
                        f"the event loop has been blocked {now - due:.0f} s so far while task "
                        f"{task} runs (at {where}): every user of this process is waiting",
                    )

    def _warn(self, task: str, what: str) -> None:
        """Once per task: a task that blocks at every run would otherwise flood the log."""
        if task in self._warned:
            return
        self._warned.add(task)
        log.warning("%s; %s", what, ADVICE)
