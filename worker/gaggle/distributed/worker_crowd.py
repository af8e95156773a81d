"""The gaggle's users as one crowd, for a test plan or load shape that the manager drives.

The manager keeps which worker runs which slot (user index of the whole gaggle). An added user
takes the lowest free slot and goes to the worker with the fewest users; a removed one comes
from the worker with the most, its last started first. Lowest free slots keep the running slots
the allocation's first entries, so the task-set weights stay balanced; fewest/most keeps the
workers even. Each resize sends every changed worker one ``Adjust``.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

Link = TypeVar("Link", bound=Hashable)


class WorkerCrowd(Generic[Link]):
    def __init__(
        self,
        active: Callable[[], list[Link]],
        send: Callable[[Link, list[int], list[int]], None],
    ) -> None:
        self._active, self._send = active, send
        self.owner: dict[int, Link] = {}  # slot → the worker running it
        self.slots: dict[Link, set[int]] = {}
        self._free: list[int] = []
        self._next_slot = 0

    @property
    def target(self) -> int:
        return len(self.owner)

    def count(self, link: Link) -> int:
        return len(self.slots.get(link, ()))

    def resize(self, users: int) -> None:
        links = self._active()
        if not links:
            return
        order = {link: index for index, link in enumerate(links)}
        starts: dict[Link, list[int]] = {}
        stops: dict[Link, list[int]] = {}
        while self.target < users:
            link = min(links, key=lambda w: (self.count(w), order[w]))
            slot = heapq.heappop(self._free) if self._free else self._next_slot
            self._next_slot = max(self._next_slot, slot + 1)
            self.owner[slot] = link
            self.slots.setdefault(link, set()).add(slot)
            starts.setdefault(link, []).append(slot)
        while self.target > users:
            link = max(links, key=lambda w: (self.count(w), order[w]))
            slot = max(self.slots[link])
            self.slots[link].discard(slot)
            del self.owner[slot]
            heapq.heappush(self._free, slot)
            stops.setdefault(link, []).append(slot)
        for link in links:
            if link in starts or link in stops:
                self._send(link, starts.get(link, []), stops.get(link, []))

    def adopt(self, link: Link, slots: Iterable[int]) -> None:
        """Users a worker runs already (the share it hatched): the crowd moves them from now on,
        the lowest free slots being those no worker runs."""
        for slot in slots:
            self.owner[slot] = link
            self.slots.setdefault(link, set()).add(slot)
            self._next_slot = max(self._next_slot, slot + 1)
        self._free = sorted(set(range(self._next_slot)) - set(self.owner))  # a sorted heap

    def lose(self, link: Link) -> None:
        """A worker is gone: its users start again on the others (its numbers so far count)."""
        users = self.target
        for slot in self.slots.pop(link, set()):
            del self.owner[slot]
            heapq.heappush(self._free, slot)
        self.resize(users)
