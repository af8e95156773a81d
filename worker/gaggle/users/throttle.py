"""``--throttle-requests N``: at most N requests per second across all users of a process.

Permits are handed out on a fixed grid 1/N seconds apart, so the rate never exceeds N over any
window longer than one interval, and nobody waits on a lock: each request takes the next slot.
"""

from __future__ import annotations

import asyncio
import time


class Throttle:
    __slots__ = ("_interval", "_next")

    def __init__(self, per_second: float) -> None:
        self._interval = 1.0 / per_second
        self._next = 0.0

    async def acquire(self) -> None:
        now = time.monotonic()
        slot = self._next if self._next > now else now
        self._next = slot + self._interval
        if slot > now:
            await asyncio.sleep(slot - now)
