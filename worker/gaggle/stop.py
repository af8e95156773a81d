"""The run's stop signal: set once; wakes every pausing user at once.

Users pause between tasks by ``await stop.sleep(seconds)``. A plain ``asyncio.sleep`` would make
a stopping run wait for the longest pause (15 s in the seed's example); a future per sleeper that
``set()`` resolves costs less than ``asyncio.wait_for`` per pause, which matters at 10k users.
"""

from __future__ import annotations

import asyncio


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

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` or until the stop signal, whichever comes first."""
        if self._event.is_set():
            return
        loop = asyncio.get_running_loop()
        sleeper: asyncio.Future[None] = loop.create_future()
        handle = loop.call_later(seconds, _wake, sleeper)
        self._sleepers.add(sleeper)
        try:
            await sleeper
        finally:
            handle.cancel()
            self._sleepers.discard(sleeper)


def _wake(sleeper: asyncio.Future[None]) -> None:
    if not sleeper.done():
        sleeper.set_result(None)
