"""A worker: joins the manager, runs its share of users from the common start instant, and
ships what its users did as deltas every second, with a final one when it leaves.

The manager's ``Stop`` stops the users gracefully; Ctrl-C on the worker stops it too and says
goodbye, so the manager stops the whole gaggle. A worker whose manager goes away stops its load
at once: a load generator never keeps hammering without its control plane.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import socket
import time
from collections.abc import AsyncIterator
from typing import Any, cast

import grpc

from gaggle import __version__
from gaggle.attack import Attack
from gaggle.distributed.convert import to_delta
from gaggle.distributed.manager import PROTOCOL_VERSION
from gaggle.distributed.role import Role
from gaggle.runner import Runner, RunPlan
from gaggle.taskset import TaskSet
from gaggle.wire import gaggle_pb2 as wire
from gaggle.wire import gaggle_pb2_grpc as wire_grpc

log = logging.getLogger("gaggle")

_EOF: Any = grpc.aio.EOF  # type: ignore[attr-defined]  # missing from grpc-stubs
CONNECT_TIMEOUT = 30.0  # seconds to find the manager before giving up
DELTA_INTERVAL = 1.0


class WorkerError(Exception):
    """The worker cannot take part: ``exit_code`` says how bad (2 for refusal or no manager)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


async def _outgoing(
    outbox: asyncio.Queue[wire.WorkerMessage | None],
) -> AsyncIterator[wire.WorkerMessage]:
    while (message := await outbox.get()) is not None:
        yield message


async def _next(call: Any) -> wire.ManagerMessage | None:
    """The manager's next message, or None when it closed the stream."""
    message = await call.read()
    return None if message is _EOF else cast(wire.ManagerMessage, message)


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
        self.outbox: asyncio.Queue[wire.WorkerMessage | None] = asyncio.Queue()
        self.sequence = 0
        self.hatched = False
        self.manager_lost = ""

    @property
    def address(self) -> str:
        return f"{self.role.manager_host}:{self.role.manager_port}"

    async def run(self) -> None:
        async with grpc.aio.insecure_channel(self.address) as channel:
            try:
                await asyncio.wait_for(channel.channel_ready(), CONNECT_TIMEOUT)
            except TimeoutError:
                raise WorkerError(
                    f"no manager answered at {self.address} within {CONNECT_TIMEOUT:.0f} s "
                    "(is it running? check --manager-host/--manager-port)",
                    2,
                ) from None
            call = wire_grpc.GaggleStub(channel).Join(_outgoing(self.outbox))
            self.outbox.put_nowait(wire.WorkerMessage(hello=self._hello()))
            try:
                await self._take_part(call)
            except grpc.aio.AioRpcError as error:
                raise WorkerError(
                    f"lost the manager at {self.address}: {error.code().name}", 1
                ) from None
            finally:
                self.outbox.put_nowait(None)

    def _hello(self) -> wire.Hello:
        return wire.Hello(
            protocol_version=PROTOCOL_VERSION,
            gaggle_version=__version__,
            rules_hash=self.rules_hash,
            file_hash=self.file_hash,
            rules_json=self.rules_json,
            name=f"{socket.gethostname()}:{os.getpid()}",
        )

    async def _take_part(self, call: Any) -> None:
        first = await _next(call)
        if first is None or first.HasField("refused"):
            reason = first.refused.reason if first is not None else "the stream closed"
            raise WorkerError(f"the manager at {self.address} refused this worker: {reason}", 2)
        log.warning(
            "joined the manager at %s as worker %d of %d",
            self.address,
            first.welcome.worker_index + 1,
            first.welcome.workers,
        )
        message = await _next(call)
        if message is None or not message.HasField("start"):
            return  # stopped before the start
        runner = Runner(self._plan(message.start))
        await asyncio.sleep(max(0.0, message.start.start_at - time.time()))
        running = asyncio.ensure_future(runner.run())
        reader = asyncio.ensure_future(self._read(call, runner))
        helpers = [
            asyncio.ensure_future(self._pump(runner)),
            asyncio.ensure_future(self._say_goodbye_when_interrupted(runner)),
        ]
        try:
            await running
        finally:
            await asyncio.sleep(0)  # let a goodbye for a stop that just happened go first
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
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
        plan = Attack(*self.tasksets).plan(options)
        config = dataclasses.replace(
            plan.config, users=start.users, hatch_rate=start.hatch_rate or 1.0, run_time=0.0
        )
        return dataclasses.replace(
            plan,
            config=config,
            first_user=start.first_user,
            report=False,
            on_hatched=self._on_hatched,
        )

    def _on_hatched(self) -> None:
        self.hatched = True

    async def _read(
        self,
        call: Any,
        runner: Runner,
    ) -> None:
        try:
            while (message := await _next(call)) is not None:
                if message.HasField("stop"):
                    runner.ctx.stop.set(f"manager: {message.stop.reason}")
        except grpc.aio.AioRpcError as error:
            self.manager_lost = error.code().name
        else:
            if not runner.ctx.stop.is_set():
                self.manager_lost = "the stream closed"
        if self.manager_lost:
            runner.ctx.stop.set("lost the manager")

    async def _pump(self, runner: Runner) -> None:
        """A delta every second; one at once when hatching completes (the manager's reset)."""
        hatched_sent = False
        while True:
            interval = DELTA_INTERVAL if hatched_sent or not self.hatched else 0.0
            slept_from = time.perf_counter()
            await asyncio.sleep(interval)
            # How late the timer fired: the users' loop is that busy (Locust mistook it for death).
            lag = max(0.0, time.perf_counter() - slept_from - interval)
            self.outbox.put_nowait(
                wire.WorkerMessage(heartbeat=wire.Heartbeat(loop_lag_seconds=lag))
            )
            hatched_sent = self.hatched
            self._send_delta(runner, final=False)

    async def _say_goodbye_when_interrupted(self, runner: Runner) -> None:
        """Ctrl-C or SIGTERM here stops the whole gaggle: the manager hears it at once."""
        await runner.ctx.stop.wait()
        if runner.ctx.stop.reason.startswith("caught"):
            goodbye = wire.Goodbye(reason=runner.ctx.stop.reason)
            self.outbox.put_nowait(wire.WorkerMessage(goodbye=goodbye))

    def _send_delta(self, runner: Runner, *, final: bool) -> None:
        self.sequence += 1
        running = sum(1 for task in runner.users if not task.done())
        delta = to_delta(runner.ctx.aggregator.drain(), self.sequence, running, final)
        delta.hatched = self.hatched
        self.outbox.put_nowait(wire.WorkerMessage(delta=delta))
