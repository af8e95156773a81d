"""The manager: waits for its workers, starts them together, merges their deltas, stops them.

Each worker holds one ``Join`` stream. The manager checks its hello (protocol version, rules
hash), answers with a welcome, and once ``--expect-workers`` have joined sends every worker a
``Start`` with its share of users and one start instant. From then on it only merges deltas (its
cost is per delta, not per request), resets the totals when every worker has hatched (unless
--no-reset-metrics), and broadcasts ``Stop`` at the run time, on Ctrl-C/SIGTERM, or when a
worker leaves because it was interrupted. The summary is printed from the merged totals. The
lifecycle around that — report, /metrics, tables, reset, verdicts, signals — is the session's
(``gaggle.run.session``), the same as a standalone run's.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import grpc

from gaggle.distributed.admission import why_not_join
from gaggle.distributed.protocol import HEARTBEAT_INTERVAL, WORKER_SILENCE
from gaggle.distributed.role import Role
from gaggle.distributed.security import server_credentials, warn_if_open
from gaggle.distributed.segments import to_wire
from gaggle.distributed.shares import Share, shared_options, split_arrivals, split_users
from gaggle.distributed.worker_crowd import WorkerCrowd
from gaggle.errors import ConfigError
from gaggle.kits.ports import join_host_port
from gaggle.load.timetable import Segment
from gaggle.run.session import RunPlan, Session
from gaggle.wire import gaggle_pb2 as wire
from gaggle.wire import gaggle_pb2_grpc as wire_grpc

log = logging.getLogger("gaggle")

START_DELAY = 1.0  # seconds between the Start message and the common start instant
RESCHEDULE_LEAD = 0.5  # seconds between a Reschedule and the instant it is due


@dataclass(eq=False)
class WorkerLink:
    index: int
    name: str
    outbox: asyncio.Queue[wire.ManagerMessage | None] = field(default_factory=asyncio.Queue)
    last_sequence: int = 0
    hatched: bool = False
    done: bool = False  # sent its final delta, or was lost
    lost: bool = False
    leaving: bool = False  # said goodbye to leave alone (--leave-on-sigterm)
    users_running: int = 0
    loop_lag: float = 0.0  # seconds, from the worker's last heartbeat
    share: Share | None = None  # its users, once started
    replaced: bool = False  # lost, and its share given to a worker that joined later
    heard: float = field(default_factory=time.monotonic)
    last_delta_at: float = field(default_factory=time.monotonic)


class Manager(Session, wire_grpc.GaggleServicer):
    reschedule_lead = RESCHEDULE_LEAD

    def __init__(self, plan: RunPlan, role: Role, rules_hash: str, rules_json: str) -> None:
        # numpy (behind the merged tally) costs every process ~12 MB: only a manager imports it.
        from gaggle.distributed.merged_tally import MergedTally

        self.merged = MergedTally()
        super().__init__(plan, self.merged)
        self.role = role
        self.rules_hash, self.rules_json = rules_hash, rules_json
        self.workers: list[WorkerLink] = []
        self.all_joined = asyncio.Event()
        self.all_done = asyncio.Event()
        self.lost = 0
        self.started = False
        self.start_epoch = 0.0  # the common start instant, Unix seconds
        self.port = role.bind_port
        self.on_listening: Callable[[int], None] | None = None  # told the port once bound
        # A --test-plan or load shape is driven here; workers start and stop users as told.
        self.driven = bool(plan.config.test_plan or plan.shape) and not plan.config.open_model
        self.crowd = WorkerCrowd(self._running_workers, self._adjust)

    # --- the stream -----------------------------------------------------------------------
    async def Join(  # noqa: N802 - the name comes from the .proto
        self,
        request_iterator: AsyncIterator[wire.WorkerMessage],
        context: grpc.aio.ServicerContext[wire.WorkerMessage, wire.ManagerMessage],
    ) -> AsyncIterator[wire.ManagerMessage]:
        first = await anext(aiter(request_iterator), None)
        if first is None or not first.HasField("hello"):
            return
        refusal = self._check(first.hello)
        lost = self._vacancy() if self.started and not refusal else None
        if self.started and not refusal and lost is None:
            refusal = (
                f"the run has started with all its {self.role.expect_workers} worker(s); a worker "
                "that joins mid-run takes the place of a lost one, and none is lost"
            )
        if refusal:
            log.error("refused worker %s: %s", first.hello.name or context.peer(), refusal)
            yield wire.ManagerMessage(refused=wire.Refused(reason=refusal))
            return
        link = WorkerLink(index=len(self.workers), name=first.hello.name or context.peer())
        self.workers.append(link)
        yield wire.ManagerMessage(
            welcome=wire.Welcome(worker_index=link.index, workers=self.role.expect_workers)
        )
        if lost is not None and lost.share is not None:
            lost.replaced, link.share = True, lost.share
            log.warning(
                "worker %d joined mid-run (%s): it takes lost worker %d's %d user(s)",
                link.index + 1,
                link.name,
                lost.index + 1,
                lost.share.users,
            )
            link.outbox.put_nowait(self._start_message(lost.share))
        else:
            log.info("worker %d joined: %s", link.index + 1, link.name)
        if len(self.workers) == self.role.expect_workers:
            self.all_joined.set()
        reader = asyncio.ensure_future(self._read(link, request_iterator))
        try:
            while (message := await link.outbox.get()) is not None:
                yield message
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            if not link.done:
                self._lose(link, "its stream ended")

    def _vacancy(self) -> WorkerLink | None:
        """A lost worker whose users nobody runs: a worker that joins mid-run takes them on."""
        if self.stop_reason:
            return None
        return next(
            (w for w in self.workers if w.done and w.share and not w.replaced and w.lost), None
        )

    def _check(self, hello: wire.Hello) -> str:
        state = (self.started, len(self.workers), self.stop_reason)
        return why_not_join(hello, self.role, self.rules_hash, self.rules_json, *state)

    async def _read(self, link: WorkerLink, messages: AsyncIterator[wire.WorkerMessage]) -> None:
        async for message in messages:
            link.heard = time.monotonic()
            kind = message.WhichOneof("body")
            if kind == "delta":
                self._merge(link, message.delta)
            elif kind == "heartbeat":
                link.loop_lag = message.heartbeat.loop_lag_seconds
            elif kind == "goodbye" and message.goodbye.leaving:
                link.leaving = True
                reason = message.goodbye.reason
                log.warning("worker %d leaves the gaggle: %s", link.index + 1, reason)
            elif kind == "goodbye":
                log.warning("worker %d is stopping: %s", link.index + 1, message.goodbye.reason)
                self.stop(f"worker {link.index + 1}: {message.goodbye.reason}")

    def _merge(self, link: WorkerLink, delta: wire.Delta) -> None:
        if delta.sequence <= link.last_sequence:
            return  # a resend: already merged
        link.last_sequence = delta.sequence
        link.last_delta_at = time.monotonic()
        link.users_running = delta.users_running
        self.merged.merge(delta)
        if delta.hatched and not link.hatched:
            link.hatched = True
            self._check_hatched()
        if delta.final:
            link.done = True
            if link.leaving and not self.stop_reason:  # it left; its numbers are complete
                link.lost = True
                self.lost += 1
                log.warning("worker %d left; a worker that joins takes its users", link.index + 1)
                link.outbox.put_nowait(None)
                self.crowd.lose(link)
                self._check_hatched()
            self._check_done()

    def _lose(self, link: WorkerLink, why: str) -> None:
        link.done = link.lost = True
        self.lost += 1
        log.warning(
            "lost worker %d (%s): what it did in the %.1f s since its last delta is unknown",
            link.index + 1,
            why,
            time.monotonic() - link.last_delta_at,
        )
        link.outbox.put_nowait(None)  # end its stream: a silent worker that wakes up must stop
        self.crowd.lose(link)  # a driven plan's users go on on the others
        self._check_hatched()  # a worker lost while hatching must not hold the others' reset
        self._check_done()

    def _check_hatched(self) -> None:
        """Every worker hatched its share: the hatch. A driven plan says when instead."""
        if self.driven or self.plan.config.open_model:
            return
        if not self.hatched_all and all(w.hatched or w.done for w in self.workers):
            self.hatched()

    def _check_done(self) -> None:
        if self.workers and all(w.done for w in self.workers):
            config = self.plan.config
            if config.iterations and self.started and not self.stop_reason:
                self.stopping.set(f"every user ran its {config.iterations} iteration(s)")
            if self.open_model and self.started and not self.stop_reason:
                self.stopping.set(self.open_model.timetable.ends_run)
            self.all_done.set()

    # --- a driven plan ------------------------------------------------------------------------
    def _running_workers(self) -> list[WorkerLink]:
        return [w for w in self.workers if w.share is not None and not w.done]

    def _adjust(self, link: WorkerLink, start: list[int], stop: list[int]) -> None:
        adjust = wire.Adjust(start=start, stop=stop)
        link.outbox.put_nowait(wire.ManagerMessage(adjust=adjust))

    def users_target(self) -> int:
        return self.crowd.target if self.driven else self.plan.config.users

    def user_crowd(self) -> WorkerCrowd[WorkerLink]:
        return self.crowd

    def worker_users(self) -> dict[int, int]:
        if self.driven:
            return {w.index + 1: self.crowd.count(w) for w in self._running_workers()}
        return {w.index + 1: w.share.users for w in self._running_workers() if w.share}

    def steering_refused(self) -> str:
        refused = super().steering_refused()
        if refused or self.driven or self.hatched_all:
            return refused
        # Which of a hatching share's users already run only its worker knows: wait for it.
        return "the workers are still hatching their users; change them once all have hatched"

    def take_over(self) -> None:
        """The shares the workers hatched become the crowd's slots, so the control API can
        add users to the workers with the fewest and take them from those with the most."""
        if self.driven:
            return
        for link in self._running_workers():
            if link.share is not None:
                first = link.share.first_user
                self.crowd.adopt(link, range(first, first + link.share.users))
                # a worker that replaces it later gets the crowd's users, not this share again
                link.share = dataclasses.replace(link.share, users=0)
        self.driven = True

    def _follow(self) -> None:
        """Drive the plan or shape from the common start instant; the run ends with it."""
        config, shape = self.plan.config, self.plan.shape
        if config.open_model:
            self.steering.begin(self._follow_arrivals())
        elif config.test_plan:
            self.steering.begin_plan(delay=START_DELAY)
        elif shape is not None:
            self.steering.begin_shape(shape, delay=START_DELAY)

    async def _follow_arrivals(self) -> None:
        """An open model: the workers follow the one timetable from the common instant (each
        its every n-th arrival) and end with it, so no Stop cuts a worker's last arrivals short;
        here the timetable is kept (its stages marked, its changes sent)."""
        await self.stopping.sleep(max(0.0, self.start_epoch - time.time()))
        self.schedule_begins()

    def rescheduled(self, segment: Segment) -> None:
        reschedule = wire.Reschedule(segment=to_wire(segment))
        for link in self._running_workers():
            link.outbox.put_nowait(wire.ManagerMessage(reschedule=reschedule))

    # --- the run ----------------------------------------------------------------------------
    @property
    def expected_workers(self) -> int:
        return self.role.expect_workers

    def users_running(self) -> int:
        return sum(w.users_running for w in self.workers if not w.done)

    def has_workers(self) -> bool:
        return True

    def waiting_for(self) -> str:
        if self.started:
            return "starting"  # all joined; the common start instant is a moment away
        return f"waiting for workers ({len(self.workers)}/{self.role.expect_workers})"

    def worker_counts(self) -> tuple[int, int]:
        return (sum(1 for w in self.workers if not w.done), self.lost)

    def loop_lags(self) -> dict[int, float]:
        return {w.index + 1: w.loop_lag for w in self.workers if not w.done}

    def _stopping(self, reason: str) -> None:
        log.info("stopping the gaggle: %s", reason)
        for link in self.workers:
            link.outbox.put_nowait(wire.ManagerMessage(stop=wire.Stop(reason=reason)))

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
                    link.outbox.put_nowait(beat)

    def _start_message(self, share: Share) -> wire.ManagerMessage:
        start_at = time.time() + START_DELAY
        joined = max(0.0, start_at - self.start_epoch) if self.started else 0.0
        # a late worker joins the timetable in force (its first: from the start, as configured)
        timetable = self.open_model.timetable.since(joined) if self.open_model and joined else []
        return wire.ManagerMessage(
            start=wire.Start(
                start_at=start_at,
                config_json=json.dumps(shared_options(self.plan.config)),
                users=share.users,
                first_user=share.first_user,
                hatch_rate=share.hatch_rate,
                total_users=self.plan.config.users,
                arrival_first=share.arrival_first,
                arrival_stride=share.arrival_stride,
                timetable=[to_wire(segment) for segment in timetable],
                joined=joined,
            )
        )

    async def _drive(self) -> bool:
        config, role = self.plan.config, self.role
        server = grpc.aio.server()
        wire_grpc.add_GaggleServicer_to_server(self, server)
        address = join_host_port(role.bind_host, role.bind_port)  # [::]: both families
        credentials = server_credentials(role)
        try:
            if credentials is None:
                self.port = server.add_insecure_port(address)
            else:
                self.port = server.add_secure_port(address, credentials)
        except RuntimeError as error:
            reason = f"cannot listen on {address} ({error})"
            raise ConfigError("--manager-bind-port", role.bind_port, reason) from None
        address = join_host_port(role.bind_host, self.port)
        warn_if_open(role)
        await server.start()
        heartbeats = asyncio.ensure_future(self._heartbeats())
        if self.on_listening is not None:
            self.on_listening(self.port)
        try:
            log.warning(
                "manager listening on %s, waiting for %d worker(s)", address, role.expect_workers
            )
            joined = asyncio.ensure_future(self.all_joined.wait())
            while not joined.done() and not self.stop_reason:
                await asyncio.wait([joined], timeout=0.2)
            if self.stop_reason:
                joined.cancel()
                return False  # nothing ran: no tables, no verdict
            self._clock_starts(time.perf_counter() + START_DELAY)
            self.start_epoch = time.time() + START_DELAY
            users = 0 if self.driven else config.users  # a driven plan adds them as it goes
            shares = (
                split_arrivals(config.max_users, len(self.workers))
                if config.open_model
                else split_users(users, config.hatch_rate, len(self.workers))
            )
            for link, share in zip(self.workers, shares, strict=True):
                link.share = share
                link.outbox.put_nowait(self._start_message(share))
            self.started = True
            self._follow()
            await self.all_done.wait()
            self.steering.close()
            self.ended()
            for link in self.workers:
                link.outbox.put_nowait(None)
            if self.steering.failure is not None:  # a load shape's bad tick ended the run
                raise self.steering.failure
            return True
        finally:
            heartbeats.cancel()
            await server.stop(grace=None if self.aborted else 1)
