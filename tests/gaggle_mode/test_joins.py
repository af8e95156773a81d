"""Joining a gaggle, many times and under load (review D17: a worker was lost in the instant it
joined, once in 26 starts at load average 18). A manager runs in the test's loop; its workers are
the worker's real line to the manager (``ManagerLink``: the gRPC stream, heartbeats and silence
watch on threads of their own) without users, so 20 of them join 50 times in seconds."""

from __future__ import annotations

import asyncio
import io
import logging
import queue
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from rich.console import Console

from gaggle import Attack, TaskSet, constant, task
from gaggle._version import __version__
from gaggle.distributed import manager_link, servicer
from gaggle.distributed.admission import why_not_join
from gaggle.distributed.codec import to_delta
from gaggle.distributed.manager import Manager
from gaggle.distributed.manager_link import ManagerLink
from gaggle.distributed.protocol import PROTOCOL_VERSION
from gaggle.distributed.rules import rules_hash, rules_json
from gaggle.metrics import Metrics
from gaggle.options.role import Role, RoleKind
from gaggle.run import RunResult
from gaggle.wire import gaggle_pb2 as wire

T = TypeVar("T")


class Idle(TaskSet):
    wait_time = constant(1)

    @task
    async def rest(self) -> None: ...


class LinkedWorker:
    """A worker's real line to its manager, driven by the test instead of by users: it joins,
    hears what the manager says (heartbeats aside), and sends the deltas it is given. Its calls
    block: run them on a thread (``asyncio.to_thread``) while the manager runs on the loop."""

    def __init__(self, port: int, name: str) -> None:
        self.name = name
        self.heard: list[str] = []  # the kinds of message the manager sent, in order
        self.start: wire.Start | None = None
        self._inbox: queue.SimpleQueue[wire.ManagerMessage | None] = queue.SimpleQueue()
        role = Role(
            kind=RoleKind.WORKER, manager_host="127.0.0.1", manager_port=port, join_timeout=30
        )
        self.link = ManagerLink(role, self._inbox.put)

    def join(self) -> None:
        self.link.connect()
        hello = wire.Hello(
            protocol_version=PROTOCOL_VERSION,
            gaggle_version=__version__,
            rules_hash=rules_hash([Idle]),
            rules_json=rules_json([Idle]),
            name=self.name,
        )
        self.link.open(hello)

    def until(self, kind: str, timeout: float = 30) -> wire.ManagerMessage | None:
        """The manager's next message of ``kind`` (None: the stream ended first)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                message = self._inbox.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"{self.name}: no {kind} in {timeout} s: {self.heard}"
                ) from None
            if message is None:
                self._inbox.put(None)  # ended for every later call too
                return None
            said = str(message.WhichOneof("body"))
            self.heard.append(said)
            if said == "start":
                self.start = message.start
            if said == kind:
                return message

    def send(self, delta: wire.Delta) -> None:
        self.link.send(wire.WorkerMessage(delta=delta))

    def finish(self) -> None:
        """What a worker does when its users have stopped: a final delta (nothing counted)."""
        assert self.start is not None
        delta = to_delta(Metrics(), sequence=1, users_running=self.start.users, final=True)
        delta.hatched = True
        self.send(delta)

    def close(self) -> None:
        self.link.close()


def take_part(worker: LinkedWorker) -> None:
    """Join, wait for the Start, finish: a worker's whole part in a run, without users."""
    try:
        worker.join()
        if worker.until("start") is not None:
            worker.finish()
            worker.until("stream end", timeout=30)  # the manager ends it when all are done
    finally:
        worker.close()


def new_manager(workers: int, users: int) -> Manager:
    options = {"host": "http://127.0.0.1:9", "users": users, "hatch_rate": 1000}
    plan = Attack(Idle).plan(options, console=Console(file=io.StringIO(), width=140))
    role = Role(kind=RoleKind.MANAGER, expect_workers=workers, bind_host="127.0.0.1", bind_port=0)
    return Manager(plan, role, rules_hash([Idle]), rules_json([Idle]))


async def serving(manager: Manager) -> tuple[asyncio.Future[RunResult], int]:
    """The manager's run, started, and the port it listens on once it does."""
    port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    manager.on_listening = port.set_result
    run = asyncio.ensure_future(manager.run())
    either: list[asyncio.Future[Any]] = [port, run]
    done, _ = await asyncio.wait(either, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    assert port in done, run.exception() if run.done() else "the manager did not listen"
    return run, port.result()


async def within(awaitable: Awaitable[T], what: str, timeout: float = 60) -> T:
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except TimeoutError:
        raise AssertionError(f"{what} did not happen within {timeout} s") from None


async def until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        await asyncio.sleep(0.01)


def test_d17_twenty_workers_join_fifty_times_and_every_one_starts() -> None:
    """Each round: 20 workers join at once, every one is counted and gets its Start (with the
    users the manager split over all 20), none is lost, and the run ends when all are done."""

    async def one_round(number: int) -> None:
        manager = new_manager(workers=20, users=40)
        run, port = await serving(manager)
        workers = [LinkedWorker(port, f"round {number} worker {i}") for i in range(20)]
        threads = [threading.Thread(target=take_part, args=(w,), daemon=True) for w in workers]
        for thread in threads:
            thread.start()
        try:
            await within(run, f"round {number}: the run's end")
        finally:
            for worker, thread in zip(workers, threads, strict=True):
                worker.close()
                await asyncio.to_thread(thread.join, 30)
        lost = [w.name for w in workers if w.start is None]
        assert lost == [], (number, lost, [w.heard for w in workers if w.start is None])
        assert (len(manager.workers), manager.servicer.lost) == (20, 0), number
        assert sorted(w.start.users for w in workers if w.start) == [2] * 20, number

    async def rounds() -> None:
        for number in range(50):
            await one_round(number)

    asyncio.run(rounds())


def test_d17_a_manager_slow_to_answer_a_hello_does_not_lose_the_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The manager's loop is held (as under load) while it admits a worker, for longer than a
    worker waits for a word from a manager it has joined. The worker used to give up in that
    time, and the manager lost it in the instant it admitted it; now the hello has
    --join-timeout to be answered, and the worker takes part."""
    monkeypatch.setattr(manager_link, "MANAGER_SILENCE", 1.0)  # a short test; the same race
    monkeypatch.setattr(servicer, "HEARTBEAT_INTERVAL", 0.1)  # heard often once it has joined

    def slow_admission(*args: Any) -> str:
        time.sleep(2.5)  # the scenario: a manager starved for 2.5 s, not a wait for a condition
        return why_not_join(*args)

    monkeypatch.setattr(servicer, "why_not_join", slow_admission)

    async def gaggle() -> tuple[Manager, LinkedWorker]:
        manager = new_manager(workers=1, users=3)
        run, port = await serving(manager)
        worker = LinkedWorker(port, "patient")
        thread = threading.Thread(target=take_part, args=(worker,), daemon=True)
        thread.start()
        try:
            await within(run, "the run's end")
        finally:
            worker.close()
            await asyncio.to_thread(thread.join, 30)
        return manager, worker

    manager, worker = asyncio.run(gaggle())
    assert worker.heard[:2] == ["welcome", "start"], (worker.heard, worker.link.error)
    assert worker.start is not None
    assert worker.start.users == 3
    assert manager.servicer.lost == 0


def test_d17_a_worker_lost_before_the_start_gives_its_place_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A worker whose stream ends before the start had no users: the manager waits for another
    in its place, and starts the workers that are there with all the users between them."""

    async def gaggle() -> tuple[Manager, list[LinkedWorker]]:
        manager = new_manager(workers=2, users=6)
        run, port = await serving(manager)
        gone = LinkedWorker(port, "gone")
        await asyncio.to_thread(gone.join)
        assert await asyncio.to_thread(gone.until, "welcome") is not None
        gone.close()  # before the start: its stream ends
        await until(lambda: manager.servicer.lost == 1, "the manager losing the worker")
        workers = [LinkedWorker(port, name) for name in ("second", "third")]
        threads = [threading.Thread(target=take_part, args=(w,), daemon=True) for w in workers]
        for thread in threads:
            thread.start()
        try:
            await within(run, "the run's end")
        finally:
            for worker, thread in zip(workers, threads, strict=True):
                worker.close()
                await asyncio.to_thread(thread.join, 30)
        return manager, [gone, *workers]

    with caplog.at_level(logging.WARNING, logger="gaggle"):
        manager, (gone, *started) = asyncio.run(gaggle())
    assert gone.start is None
    assert [w.heard[:2] for w in started] == [["welcome", "start"]] * 2
    assert sorted(w.start.users for w in started if w.start) == [3, 3]
    assert (len(manager.workers), manager.servicer.lost) == (3, 1)
    assert "lost worker 1 (its stream ended) before the start: waiting for workers (0/2)" in (
        caplog.text
    )
