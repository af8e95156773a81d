"""The run's stop signal: set once; wakes every pausing user at once.

Users pause between tasks by ``await stop.sleep(seconds)``. A plain ``asyncio.sleep`` would make
a stopping run wait for the longest pause (15 s in the seed's example); a future per sleeper that
``set()`` resolves costs less than ``asyncio.wait_for`` per pause, which matters at 10k users.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, MutableSet

Sleepers = MutableSet[asyncio.Future[None]]  # who else may wake a sleeper early

log = logging.getLogger(__name__)


class StopSignal:
    __slots__ = ("_event", "_sleepers", "reason")

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._sleepers: set[asyncio.Future[None]] = set()
        self.reason = ""

    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self, reason: str) -> None:
        if self._event.is_set():
            return
        self.reason = reason
        self._event.set()
        for sleeper in self._sleepers:
            if not sleeper.done():
                sleeper.set_result(None)
        self._sleepers.clear()

    async def wait(self) -> None:
        await self._event.wait()

    async def sleep(self, seconds: float, woken_by: Sleepers | None = None) -> None:
        """Sleep ``seconds`` or until the stop signal, whichever comes first; also until
        somebody resolves the sleeper put in ``woken_by`` (an open model's timetable changed)."""
        if self._event.is_set():
            return
        loop = asyncio.get_running_loop()
        sleeper: asyncio.Future[None] = loop.create_future()
        handle = loop.call_later(seconds, _wake, sleeper)
        self._sleepers.add(sleeper)
        if woken_by is not None:
            woken_by.add(sleeper)
        try:
            await sleeper
        finally:
            handle.cancel()
            self._sleepers.discard(sleeper)
            if woken_by is not None:
                woken_by.discard(sleeper)


def wake(sleepers: Sleepers) -> None:
    """Wake everyone sleeping with ``woken_by=sleepers``."""
    for sleeper in list(sleepers):
        _wake(sleeper)


def _wake(sleeper: asyncio.Future[None]) -> None:
    if not sleeper.done():
        sleeper.set_result(None)


class SignalHandlers:
    """Ctrl-C and SIGTERM on the running loop: the first stops gracefully, the second ends the
    run at once (exit 130), on a manager too."""

    def __init__(self, stop: Callable[[str], None], abort: Callable[[str], None]) -> None:
        self._stop, self._abort = stop, abort
        self._interrupts = 0

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, self._on_signal, signum)

    def remove(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signum)

    def _on_signal(self, signum: int) -> None:
        self._interrupts += 1
        name = signal.Signals(signum).name
        if self._interrupts == 1:
            log.warning("caught %s, stopping... (again to exit at once)", name)
            self._stop(f"caught {name}")
            return
        log.warning("caught %s again, exiting now", name)
        self._abort(f"caught {name} again")


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
