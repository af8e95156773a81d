"""The manager's end of its workers' gRPC streams: who is connected, and what each one said.

Each worker holds one ``Join`` stream. The servicer checks its hello (``admission``), answers
with a welcome or a refusal, gives a worker that joins mid-run the users of a lost one, merges
every delta once (a resend carries a sequence number already seen; a delta's keys are ids its
stream named, held by the stream's ``DeltaLedger``), beats the heart and loses a worker that stays
silent. It decides nothing about the run: a ``ServedRun`` (the ``Manager``) says what a worker's
start is, and hears when a worker hatched, finished or was lost.

Apart from the manager because the two change for different reasons: this is the transport
(gRPC, TLS, heartbeats, one stream per worker), the manager is the run (shares, the common
start, a plan or shape driven, the stop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import grpc

from gaggle.distributed.admission import why_not_join
from gaggle.distributed.protocol import HEARTBEAT_INTERVAL, WORKER_SILENCE
from gaggle.distributed.security import server_credentials, warn_if_open
from gaggle.distributed.shares import Share
from gaggle.errors import ConfigError
from gaggle.kits import join_host_port
from gaggle.options import Role
from gaggle.wire import gaggle_pb2 as wire
from gaggle.wire import gaggle_pb2_grpc as wire_grpc

if TYPE_CHECKING:
    from gaggle.distributed.delta_checks import DeltaLedger
    from gaggle.distributed.delta_tables import DeltaTables

log = logging.getLogger(__name__)


@dataclass(eq=False)
class WorkerLink:
    """One worker's stream, as the manager sees it (hashable by identity: the crowd's key)."""

    index: int
    name: str
    ledger: DeltaLedger  # what it sent so far: its next delta is checked against it
    outbox: asyncio.Queue[wire.ManagerMessage | None] = field(default_factory=asyncio.Queue)
    hatched: bool = False
    done: bool = False  # sent its final delta, or was lost
    lost: bool = False
    leaving: bool = False  # said goodbye to leave alone (--leave-on-sigterm)
    users_running: int = 0
    loop_lag: float = 0.0  # seconds, from the worker's last heartbeat
    loop_lag_max: float = 0.0  # the worst its heartbeats told: the run's, for rules and report
    share: Share | None = None  # its users, once started
    replaced: bool = False  # lost, and its share given to a worker that joined later
    heard: float = field(default_factory=time.monotonic)
    last_delta_at: float = field(default_factory=time.monotonic)

    def send(self, message: wire.ManagerMessage) -> None:
        self.outbox.put_nowait(message)

    def end(self) -> None:
        """End its stream (the worker stops when it sees the end)."""
        self.outbox.put_nowait(None)


class ServedRun(Protocol):
    """What the servicer asks of the run its workers serve: the ``Manager``."""

    @property
    def started(self) -> bool: ...

    @property
    def stop_reason(self) -> str: ...

    @property
    def aborted(self) -> bool: ...

    def stop(self, reason: str) -> None: ...

    def start_message(self, share: Share) -> wire.ManagerMessage:
        """A worker's ``Start`` for ``share`` (one that joins mid-run: a lost worker's)."""
        ...

    def worker_hatched(self) -> None:
        """A worker hatched its share, or was lost: maybe every worker has now."""
        ...

    def worker_lost(self, link: WorkerLink) -> None:
        """A worker is gone before the run's end: its users are the others' to run."""
        ...

    def worker_done(self) -> None:
        """A worker sent its final delta or was lost: maybe every worker is done."""
        ...


class ManagerServicer(wire_grpc.GaggleServicer):
    def __init__(
        self,
        run: ServedRun,
        role: Role,
        rules: tuple[str, str],
        merge: Callable[[wire.Delta, DeltaTables], None],
    ) -> None:
        # numpy (behind the checks) is a manager's alone; a worker imports this module too
        from gaggle.distributed.delta_checks import DeltaLedger
        from gaggle.distributed.delta_tables import decode

        self.run, self.role, self.merge = run, role, merge
        self.new_ledger, self.decode = DeltaLedger, decode
        self.rules_hash, self.rules_json = rules
        self.workers: list[WorkerLink] = []
        self.all_joined = asyncio.Event()
        self.lost = 0
        self.port = role.bind_port

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        """Listen (TLS when configured) and beat the heart until the block ends; yields the
        address, its port bound (``self.port``: --manager-bind-port 0 takes a free one)."""
        role = self.role
        # Without SO_REUSEPORT (gRPC's default is on) a second manager on this port fails here
        # instead of sharing it: workers would be spread between them, both waiting (review D8).
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        wire_grpc.add_GaggleServicer_to_server(self, server)
        address = join_host_port(role.bind_host, role.bind_port)  # [::]: both families
        credentials = server_credentials(role)
        try:
            if credentials is None:
                self.port = server.add_insecure_port(address)
            else:
                self.port = server.add_secure_port(address, credentials)
        except RuntimeError:
            reason = (
                f"cannot listen on {address}: the port is taken (another manager?) or the address "
                "is not this machine's; choose a free port"
            )
            raise ConfigError("--manager-bind-port", role.bind_port, reason) from None
        warn_if_open(role)
        await server.start()
        heartbeats = asyncio.ensure_future(self._heartbeats())
        try:
            yield join_host_port(role.bind_host, self.port)
        finally:
            heartbeats.cancel()
            await server.stop(grace=None if self.run.aborted else 1)

    def broadcast(self, message: wire.ManagerMessage) -> None:
        for link in self.workers:
            link.send(message)

    def end_all(self) -> None:
        for link in self.workers:
            link.end()

    # --- the stream -----------------------------------------------------------------------
    async def Join(  # noqa: N802 - the name comes from the .proto
        self,
        request_iterator: AsyncIterator[wire.WorkerMessage],
        context: grpc.aio.ServicerContext[wire.WorkerMessage, wire.ManagerMessage],
    ) -> AsyncIterator[wire.ManagerMessage]:
        first = await anext(aiter(request_iterator), None)
        if first is None or not first.HasField("hello"):
            return
        started = self.run.started
        refusal = self._check(first.hello)
        lost = self._vacancy() if started and not refusal else None
        if started and not refusal and lost is None:
            refusal = (
                f"the run has started with all its {self.role.expect_workers} worker(s); a worker "
                "that joins mid-run takes the place of a lost one, and none is lost"
            )
        if refusal:
            log.error("refused worker %s: %s", first.hello.name or context.peer(), refusal)
            yield wire.ManagerMessage(refused=wire.Refused(reason=refusal))
            return
        name = first.hello.name or context.peer()
        link = WorkerLink(index=len(self.workers), name=name, ledger=self.new_ledger())
        self.workers.append(link)
        if lost is not None and lost.share is not None:
            lost.replaced, link.share = True, lost.share
            log.warning(
                "worker %d joined mid-run (%s): it takes lost worker %d's %d user(s)",
                link.index + 1,
                link.name,
                lost.index + 1,
                lost.share.users,
            )
            link.send(self.run.start_message(lost.share))
        else:
            log.info("worker %d joined: %s", link.index + 1, link.name)
        if self.present() == self.role.expect_workers:
            self.all_joined.set()
        welcome = wire.Welcome(worker_index=link.index, workers=self.role.expect_workers)
        reader: asyncio.Future[None] | None = None
        try:  # from the welcome on: a stream that ends at any point loses its worker at once
            yield wire.ManagerMessage(welcome=welcome)  # before anything the outbox holds
            reader = asyncio.ensure_future(self._read(link, request_iterator))
            while (message := await link.outbox.get()) is not None:
                yield message
        finally:
            if reader is not None:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
            if not link.done:
                self._lose(link, "its stream ended")

    def _vacancy(self) -> WorkerLink | None:
        """A lost worker whose users nobody runs: a worker that joins mid-run takes them on."""
        if self.run.stop_reason:
            return None
        return next(
            (w for w in self.workers if w.done and w.share and not w.replaced and w.lost), None
        )

    def present(self) -> int:
        """Workers joined and not lost: before the start, those the gaggle waits for."""
        return sum(1 for link in self.workers if not link.lost)

    def _check(self, hello: wire.Hello) -> str:
        state = (self.run.started, self.present(), self.run.stop_reason)
        return why_not_join(hello, self.role, self.rules_hash, self.rules_json, *state)

    async def _read(self, link: WorkerLink, messages: AsyncIterator[wire.WorkerMessage]) -> None:
        async for message in messages:
            link.heard = time.monotonic()
            kind = message.WhichOneof("body")
            if kind == "delta" and not self._merge(link, message.delta):
                return  # it was dropped: nothing more of it counts
            elif kind == "heartbeat":
                lag = message.heartbeat.loop_lag_seconds
                if 0.0 <= lag < float("inf"):  # no loop lags NaN or less than nothing
                    link.loop_lag, link.loop_lag_max = lag, max(link.loop_lag_max, lag)
            elif kind == "goodbye" and message.goodbye.leaving:
                link.leaving = True
                reason = message.goodbye.reason
                log.warning("worker %d leaves the gaggle: %s", link.index + 1, reason)
            elif kind == "goodbye":
                log.warning("worker %d is stopping: %s", link.index + 1, message.goodbye.reason)
                self.run.stop(f"worker {link.index + 1}: {message.goodbye.reason}")

    def _merge(self, link: WorkerLink, delta: wire.Delta) -> bool:
        """Fold a worker's delta in, unless no real worker could have sent it: then drop the
        worker, saying why, and fold none of it (False)."""
        if delta.sequence <= link.ledger.sequence:
            return True  # a resend: already merged
        try:
            tables = self.decode(delta, link.ledger.keys)  # once, for the checks and the fold
        except ValueError:
            tables = None  # malformed: the checks say so, after what they say first
        why = link.ledger.check(delta, link.share is not None, tables)
        if why or tables is None:
            self._drop(link, f"it sent an impossible delta: {why}")
            return False
        link.last_delta_at = time.monotonic()
        link.users_running = delta.users_running
        try:
            self.merge(delta, tables)
        except ValueError as error:  # what the checks let through and the fold cannot read
            self._drop(link, f"it sent a malformed delta: {error}")
            return False
        if delta.hatched and not link.hatched:
            link.hatched = True
            self.run.worker_hatched()
        if delta.final:
            link.done = True
            if link.leaving and not self.run.stop_reason:  # it left; its numbers are complete
                link.lost = True
                self.lost += 1
                log.warning("worker %d left; a worker that joins takes its users", link.index + 1)
                link.end()
                self.run.worker_lost(link)
            self.run.worker_done()
        return True

    def _drop(self, link: WorkerLink, why: str) -> None:
        if not link.done:
            self._lose(link, why)
        else:  # lost already, or done: it only stops being heard
            log.error("worker %d (%s) is not heard any more: %s", link.index + 1, link.name, why)

    def _lose(self, link: WorkerLink, why: str) -> None:
        link.done = link.lost = True
        self.lost += 1
        if self.run.started:
            log.warning(
                "lost worker %d (%s): what it did in the %.1f s since its last delta is unknown",
                link.index + 1,
                why,
                time.monotonic() - link.last_delta_at,
            )
        else:  # it has no users yet: the gaggle waits for another in its place
            self.all_joined.clear()
            log.warning(
                "lost worker %d (%s) before the start: waiting for workers (%d/%d)",
                link.index + 1,
                why,
                self.present(),
                self.role.expect_workers,
            )
        link.end()  # a silent worker that wakes up must stop
        self.run.worker_lost(link)
        self.run.worker_done()

    async def _heartbeats(self) -> None:
        """Tell every worker the manager lives; lose a worker that has been silent too long."""
        beat = wire.ManagerMessage(heartbeat=wire.Heartbeat())
        while True:
            await asyncio.sleep(HEARTBEAT_INTERVAL)
            now = time.monotonic()
            for link in self.workers:
                if link.done:
                    continue
                if now - link.heard > WORKER_SILENCE:
                    self._lose(link, f"silent for {now - link.heard:.1f} s")
                else:
                    link.send(beat)
