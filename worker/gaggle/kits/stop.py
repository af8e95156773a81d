"""The run's stop signal: set once; wakes every pausing user at once.

Users pause between tasks by ``await stop.sleep(seconds)``. A plain ``asyncio.sleep`` would make
a stopping run wait for the longest pause (15 s in the seed's example); a future per sleeper that
``set()`` resolves costs less than ``asyncio.wait_for`` per pause, which matters at 10k users.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, MutableSet
from types import FrameType
from typing import Any

Sleepers = MutableSet[asyncio.Future[None]]  # who else may wake a sleeper early

log = logging.getLogger(__name__)
SIGNALS = (signal.SIGINT, signal.SIGTERM)

_Waiters = set[asyncio.Future[None]]  # (StopSignal.set shadows the name in its class)


class StopSignal:
    """Set once, with a reason; ``wait`` and ``sleep`` end when it is set.

    A flag and the futures of whoever waits, not an ``asyncio.Event``: every user has one, and an
    Event's deque of waiters cost ~0.8 KB per idle user (a tenth of it, measured by tracemalloc).
    """

    __slots__ = ("_is_set", "_sleepers", "reason")

    def __init__(self) -> None:
        self._is_set = False
        self._sleepers: _Waiters | None = None  # made by the first waiter
        self.reason = ""

    def is_set(self) -> bool:
        return self._is_set

    def set(self, reason: str) -> None:
        if self._is_set:
            return
        self.reason = reason
        self._is_set = True
        sleepers, self._sleepers = self._sleepers, None
        for sleeper in sleepers or ():
            if not sleeper.done():
                sleeper.set_result(None)

    def _waiting(self) -> _Waiters:
        if self._sleepers is None:
            self._sleepers = set()
        return self._sleepers

    async def wait(self) -> None:
        if self._is_set:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        sleepers = self._waiting()
        sleepers.add(waiter)
        try:
            await waiter
        finally:
            sleepers.discard(waiter)

    async def sleep(self, seconds: float, woken_by: Sleepers | None = None) -> None:
        """Sleep ``seconds`` or until the stop signal, whichever comes first; also until
        somebody resolves the sleeper put in ``woken_by`` (an open model's timetable changed)."""
        if self._is_set:
            return
        loop = asyncio.get_running_loop()
        sleeper: asyncio.Future[None] = loop.create_future()
        handle = loop.call_later(seconds, _wake, sleeper)
        sleepers = self._waiting()
        sleepers.add(sleeper)
        if woken_by is not None:
            woken_by.add(sleeper)
        try:
            await sleeper
        finally:
            handle.cancel()
            sleepers.discard(sleeper)
            if woken_by is not None:
                woken_by.discard(sleeper)


def wake(sleepers: Sleepers) -> None:
    """Wake everyone sleeping with ``woken_by=sleepers``."""
    for sleeper in list(sleepers):
        _wake(sleeper)


def _wake(sleeper: asyncio.Future[None]) -> None:
    if not sleeper.done():
        sleeper.set_result(None)


ABORT_GRACE = 1.0  # seconds the loop gets to end the run after a second signal; then _exit
SAY_WAIT = 1.0  # seconds the first signal's stop waits for its warning to be written


class SignalHandlers:
    """Ctrl-C and SIGTERM: the first stops gracefully, the second ends the run at once (exit
    130), on a manager too.

    Python-level handlers (``signal.signal``), not the loop's: the loop's run on the loop, so a
    task holding it (``while True: pass``, a blocking call) kept even the second Ctrl-C from
    acting (review D7). These run in the main thread between any two bytecodes, and a blocking
    call is interrupted to run them. The first hands the stop to the loop. The second asks the
    loop to abort (a terminal restored, logs closed) and arms a timer thread that ends the
    process with 130 after ``ABORT_GRACE`` if the loop could not. Neither needs the loop.
    """

    def __init__(
        self, stop: Callable[[str], None], abort: Callable[[str], None], exit_code: int = 130
    ) -> None:
        self._stop, self._abort, self._exit_code = stop, abort, exit_code
        self._interrupts = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        self._loop = asyncio.get_running_loop()
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may set handlers (a run in a test's thread)
        for signum in SIGNALS:
            with contextlib.suppress(ValueError, OSError):
                self._previous[signum] = signal.signal(signum, self._on_signal)

    def remove(self) -> None:
        """Put back the handlers found at ``install`` (asyncio.Runner's, or the default)."""
        for signum, previous in self._previous.items():
            with contextlib.suppress(ValueError, OSError):  # None: one set outside Python
                signal.signal(signum, signal.SIG_DFL if previous is None else previous)
        self._previous.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._interrupts += 1
        name = signal.Signals(signum).name
        loop = self._loop
        if self._interrupts == 1:
            # Said from a thread of its own: a handler runs between any two bytecodes of the main
            # thread, e.g. inside the live panel's redraw, whose console lock (an RLock) let the
            # same thread print into a half-drawn frame and leave its top line on the screen;
            # another thread waits for the frame. The stop waits for the words.
            said = threading.Thread(
                target=log.warning,
                args=("caught %s, stopping... (again to exit at once)", name),
                name="gaggle-signal-said",
                daemon=True,
            )
            said.start()
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(self._stop_when_said, said, f"caught {name}")
            return
        if self._interrupts > 2:
            return  # the exit is on its way
        log.warning("caught %s again, exiting now", name)
        watchdog = threading.Timer(ABORT_GRACE, _exit_now, (self._exit_code,))
        watchdog.daemon = True
        watchdog.start()
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._abort, f"caught {name} again")

    def _stop_when_said(self, said: threading.Thread, reason: str) -> None:
        """On the loop, between two redraws: the warning is out, then the stop (bounded: a
        console that blocks its writers must not hold the stop)."""
        said.join(SAY_WAIT)
        self._stop(reason)


def _exit_now(code: int) -> None:
    """The loop did not end the run in time (user code holds it): end the process now. Only
    raw writes: a lock the main thread holds (a buffered stream's) would block a flush."""
    with contextlib.suppress(OSError):
        os.write(2, b"gaggle: the run did not end in time; exiting\n")
        if os.isatty(1):
            os.write(1, b"\x1b[?25h")  # the live panel hid the cursor
    os._exit(code)


async def every_interval(seconds: float, stop: StopSignal, act: Callable[[], None]) -> None:
    """``act()`` every ``seconds`` until ``stop``, on a fixed grid: acting takes time (printing
    the running tables), and a loop that slept the interval after each act would drift later."""
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    while True:
        next_at += seconds
        await stop.sleep(max(0.0, next_at - loop.time()))
        if stop.is_set():
            return
        act()
