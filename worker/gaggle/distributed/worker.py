"""A worker: joins the manager, runs its share of users from the common start instant, and
ships what its users did as deltas every second, with a final one when it leaves.

The manager's ``Stop`` stops the users gracefully; Ctrl-C on the worker stops it too and says
goodbye, so the manager stops the whole gaggle. A worker whose manager goes away stops its load
at once: a load generator never keeps hammering without its control plane.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import socket
import time

from gaggle._version import __version__
from gaggle.attack import Attack
from gaggle.distributed.codec import KeyIds, segment_from_wire, timetable_from_wire, to_delta
from gaggle.distributed.manager_link import ManagerLink, WorkerError
from gaggle.distributed.protocol import PROTOCOL_VERSION
from gaggle.options import Role
from gaggle.run import Aborted, Runner, RunPlan
from gaggle.taskset import TaskSet
from gaggle.wire import gaggle_pb2 as wire

log = logging.getLogger(__name__)

DELTA_INTERVAL = 1.0
__all__ = ["Worker", "WorkerError"]


class Worker:
    def __init__(
        self,
        tasksets: list[type[TaskSet]],
        role: Role,
        own_options: dict[str, object],
        rules: tuple[str, str, str],
    ) -> None:
        self.tasksets, self.role, self.own_options = tasksets, role, own_options
        self.rules_hash, self.rules_json, self.file_hash = rules
        self.inbox: asyncio.Queue[wire.ManagerMessage | None] = asyncio.Queue()
        self.link = ManagerLink(role, self._deliver)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.sequence = 0
        self.keys = KeyIds()  # the keys its one stream has named
        self.hatched = False
        self.manager_lost = ""

    @property
    def address(self) -> str:
        return self.link.address

    def _deliver(self, message: wire.ManagerMessage | None) -> None:
        """From the link's reader thread onto the users' loop."""
        assert self.loop is not None
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is listening
            self.loop.call_soon_threadsafe(self.inbox.put_nowait, message)

    async def run(self) -> None:
        self.loop = asyncio.get_running_loop()
        await asyncio.to_thread(self.link.connect)
        self.link.open(self._hello())
        try:
            await self._take_part()
        finally:
            self.link.close()

    async def _next(self) -> wire.ManagerMessage | None:
        """The manager's next message, or None when the stream has ended."""
        message = await self.inbox.get()
        if message is None:
            self.inbox.put_nowait(None)  # ended for every later reader too
        return message

    def _hello(self) -> wire.Hello:
        return wire.Hello(
            protocol_version=PROTOCOL_VERSION,
            gaggle_version=__version__,
            rules_hash=self.rules_hash,
            file_hash=self.file_hash,
            rules_json=self.rules_json,
            token=self.role.token,
            name=f"{socket.gethostname()}:{os.getpid()}",
        )

    async def _take_part(self) -> None:
        first = await self._next()
        if first is None or first.HasField("refused"):
            if first is not None:
                reason = first.refused.reason
            else:
                reason = f"the stream closed ({self.link.error or 'no answer to hello'})"
            raise WorkerError(f"the manager at {self.address} refused this worker: {reason}", 2)
        log.warning(
            "joined the manager at %s as worker %d of %d",
            self.address,
            first.welcome.worker_index + 1,
            first.welcome.workers,
        )
        message = await self._next()
        if message is None:
            raise WorkerError(
                f"lost the manager at {self.address} before the start "
                f"({self.link.error or 'the stream closed'})",
                1,
            )
        if not message.HasField("start"):
            return  # stopped before the start
        runner = Runner(self._plan(message.start))
        # the heartbeats say how busy the users' loop is (Locust took a busy worker for dead)
        self.link.loop_lag = runner.loop_watch.recent
        await asyncio.sleep(max(0.0, message.start.start_at - time.time()))
        running = asyncio.ensure_future(runner.run())
        reader = asyncio.ensure_future(self._read(runner))
        helpers = [
            asyncio.ensure_future(self._pump(runner)),
            asyncio.ensure_future(self._say_goodbye_when_interrupted(runner)),
        ]
        try:
            await running
        except Aborted:
            if not self.manager_lost:
                raise  # a second Ctrl-C here
        finally:
            await asyncio.sleep(0)  # let a goodbye for a stop that just happened go first
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
        if not self.manager_lost:
            # the loop's recent lag first: a stall since the last heartbeat reaches the manager
            lag = wire.Heartbeat(loop_lag_seconds=runner.loop_watch.recent())
            self.link.send(wire.WorkerMessage(heartbeat=lag))
            self._send_delta(runner, final=True)
        try:
            await asyncio.wait_for(reader, 10)  # the manager closes the stream when all are done
        except TimeoutError:
            reader.cancel()
        if self.manager_lost:
            raise WorkerError(
                f"lost the manager at {self.address} ({self.manager_lost}); stopped", 1
            )

    def _plan(self, start: wire.Start) -> RunPlan:
        options = {**json.loads(start.config_json), **self.own_options}
        plan = Attack(*self.tasksets).plan(options, processes=None)  # the manager weighed it
        if plan.config.open_model:  # the schedule (its -t too) ends this worker's arrivals
            config = dataclasses.replace(plan.config, max_users=max(1, start.users))
        else:
            config = dataclasses.replace(
                plan.config, users=start.users, hatch_rate=start.hatch_rate or 1.0, run_time=0.0
            )
        return dataclasses.replace(
            plan,
            config=config,
            first_user=start.first_user,
            owns_output=False,
            on_hatched=self._on_hatched,
            arrival_first=start.arrival_first,
            arrival_stride=start.arrival_stride,
            timetable=timetable_from_wire(start.timetable),
            joined=start.joined,
        )

    def _on_hatched(self) -> None:
        self.hatched = True

    async def _read(self, runner: Runner) -> None:
        while (message := await self._next()) is not None:
            if message.HasField("stop"):
                runner.stop(f"manager: {message.stop.reason}")
            elif message.HasField("adjust"):
                await runner.ready.wait()  # users start once the logs are open
                runner.adjust(list(message.adjust.start), list(message.adjust.stop))
            elif message.HasField("reschedule") and runner.open_model is not None:
                runner.open_model.timetable.add(segment_from_wire(message.reschedule.segment))
        if self.link.error or not runner.stopping.is_set():
            # Nobody is left to count or stop this load: end it now, on_stop tasks included.
            self.manager_lost = self.link.error or "the stream closed"
            runner.abort("lost the manager")

    async def _pump(self, runner: Runner) -> None:
        """A delta every second; one at once when hatching completes (the manager's reset)."""
        hatched_sent = False
        while True:
            interval = DELTA_INTERVAL if hatched_sent or not self.hatched else 0.0
            await asyncio.sleep(interval)
            hatched_sent = self.hatched
            self._send_delta(runner, final=False)

    async def _say_goodbye_when_interrupted(self, runner: Runner) -> None:
        """Ctrl-C or SIGTERM here stops the whole gaggle: the manager hears it at once."""
        await runner.stopping.wait()
        reason = runner.stop_reason
        if reason.startswith("caught"):
            leaving = self.role.leave_on_sigterm and reason == "caught SIGTERM"
            goodbye = wire.Goodbye(reason=reason, leaving=leaving)
            self.link.send(wire.WorkerMessage(goodbye=goodbye))

    def _send_delta(self, runner: Runner, *, final: bool) -> None:
        self.sequence += 1
        metrics, users = runner.take_delta(), runner.users_running()
        delta = to_delta(metrics, self.sequence, users, final, self.keys)
        delta.hatched = self.hatched
        self.link.send(wire.WorkerMessage(delta=delta))
