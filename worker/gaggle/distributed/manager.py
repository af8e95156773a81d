"""The manager: waits for its workers, starts them together, merges their deltas, stops them.

Once ``--expect-workers`` have joined, the manager sends every worker a ``Start`` with its share
of users and one start instant. From then on it only merges deltas (its cost is per delta, not
per request), resets the totals when every worker has hatched (unless --no-reset-metrics), drives
a test plan or load shape across the workers, and broadcasts ``Stop`` at the run time, on
Ctrl-C/SIGTERM, or when a worker leaves because it was interrupted. The summary is printed from
the merged totals. The workers' streams — hellos, deltas, heartbeats, a lost worker — are the
servicer's (``servicer``), which tells the manager what happened; the lifecycle around the run —
report, /metrics, tables, reset, verdicts, signals — is the session's (``gaggle.run.session``),
the same as a standalone run's.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import Callable

from gaggle.distributed.codec import segment_to_wire
from gaggle.distributed.servicer import ManagerServicer, WorkerLink
from gaggle.distributed.shares import Share, shared_options, split_arrivals, split_users
from gaggle.distributed.worker_crowd import WorkerCrowd
from gaggle.load import Segment
from gaggle.metrics import NameGuard, WatchedTally
from gaggle.options import Role
from gaggle.run import RunPlan, Session, iterations_over
from gaggle.wire import gaggle_pb2 as wire

log = logging.getLogger(__name__)

START_DELAY = 1.0  # seconds between the Start message and the common start instant
RESCHEDULE_LEAD = 0.5  # seconds between a Reschedule and the instant it is due


class Manager(Session):
    reschedule_lead = RESCHEDULE_LEAD

    def __init__(self, plan: RunPlan, role: Role, rules_hash: str, rules_json: str) -> None:
        # numpy (behind the merged tally) costs every process ~12 MB: only a manager imports it.
        from gaggle.distributed.merged_tally import MergedTally

        self.merged = MergedTally()
        guard = NameGuard(plan.config.request_names_limit)  # every worker's names meet here
        super().__init__(plan, WatchedTally(self.merged, guard))
        self.role = role
        self.servicer = ManagerServicer(self, role, (rules_hash, rules_json), self.merged.merge)
        self.all_done = asyncio.Event()
        self.started = False
        self.start_epoch = 0.0  # the common start instant, Unix seconds
        self.port = role.bind_port
        self.on_listening: Callable[[int], None] | None = None  # told the port once bound
        self.crowd = WorkerCrowd(self._running_workers, self._adjust)

    # --- what the servicer tells -------------------------------------------------------------
    @property
    def workers(self) -> list[WorkerLink]:
        """Every worker that joined, in joining order (lost ones too): the servicer's list."""
        return self.servicer.workers

    def worker_hatched(self) -> None:
        self._check_hatched()

    def worker_lost(self, link: WorkerLink) -> None:
        if not self.started:
            return  # it had no users: the servicer waits for another worker in its place
        self.crowd.lose(link)  # a driven plan's users go on on the others
        self._check_hatched()  # a worker lost while hatching must not hold the others' reset

    def _check_hatched(self) -> None:
        """Every worker hatched its share: the hatch. A driven plan says when instead."""
        if self.driven or self.plan.config.open_model:
            return
        if not self.hatched_all and all(w.hatched or w.done for w in self.workers):
            self.hatched()

    def worker_done(self) -> None:
        """Every worker sent its final delta or was lost: the run is over."""
        if self.started and all(w.done for w in self.workers):
            config = self.plan.config
            if config.iterations and self.started and not self.stop_reason:
                self.stopping.set(iterations_over(config.iterations))
            if self.open_model and self.started and not self.stop_reason:
                self.stopping.set(self.open_model.timetable.ends_run)
            self.all_done.set()

    # --- a driven plan ------------------------------------------------------------------------
    def _running_workers(self) -> list[WorkerLink]:
        return [w for w in self.workers if w.share is not None and not w.done]

    def _adjust(self, link: WorkerLink, start: list[int], stop: list[int]) -> None:
        adjust = wire.Adjust(start=start, stop=stop)
        link.send(wire.ManagerMessage(adjust=adjust))

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
        super().take_over()

    async def _follow_arrivals(self) -> None:
        """An open model: the workers follow the one timetable from the common instant (each
        its every n-th arrival) and end with it, so no Stop cuts a worker's last arrivals short;
        here the timetable is kept (its stages marked, its changes sent)."""
        await self.stopping.sleep(max(0.0, self.start_epoch - time.time()))
        self.schedule_begins()

    def rescheduled(self, segment: Segment) -> None:
        reschedule = wire.Reschedule(segment=segment_to_wire(segment))
        for link in self._running_workers():
            link.send(wire.ManagerMessage(reschedule=reschedule))

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
        return f"waiting for workers ({self.servicer.present()}/{self.role.expect_workers})"

    def worker_counts(self) -> tuple[int, int]:
        return (sum(1 for w in self.workers if not w.done), self.servicer.lost)

    def loop_lags(self) -> dict[int, float]:
        return {w.index + 1: w.loop_lag for w in self.workers if not w.done}

    def loop_lag(self) -> float:
        """The worst loop lag of the gaggle: this loop's or any worker's, lost ones too."""
        return max([super().loop_lag(), *(w.loop_lag_max for w in self.workers)])

    def _stopping(self, reason: str) -> None:
        log.info("stopping the gaggle: %s", reason)
        self.servicer.broadcast(wire.ManagerMessage(stop=wire.Stop(reason=reason)))

    def start_message(self, share: Share) -> wire.ManagerMessage:
        """A worker's share and the common start instant (or, mid-run, a moment from now)."""
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
                timetable=[segment_to_wire(segment) for segment in timetable],
                joined=joined,
            )
        )

    async def _gathered(self) -> bool:
        """Wait for --expect-workers joined and not lost (False: stopped first). One lost
        before the start, even in the instant the last joined, gives its place back."""
        joined = self.servicer.all_joined
        while not self.stop_reason:
            if joined.is_set():
                return True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(joined.wait(), timeout=0.2)
        return False

    async def _drive(self) -> bool:
        config = self.plan.config
        async with self.servicer.serving() as address:
            self.port = self.servicer.port
            if self.on_listening is not None:
                self.on_listening(self.port)
            log.warning(
                "manager listening on %s, waiting for %d worker(s)", address, self.expected_workers
            )
            if not await self._gathered():
                return False  # stopped before the start: nothing ran, no tables, no verdict
            workers = [w for w in self.workers if not w.lost]  # who joins the start
            self._clock_starts(time.perf_counter() + START_DELAY)
            self.start_epoch = time.time() + START_DELAY
            users = 0 if self.driven else config.users  # a driven plan adds them as it goes
            shares = (
                split_arrivals(config.max_users, len(workers))
                if config.open_model
                else split_users(users, config.hatch_rate, len(workers))
            )
            for link, share in zip(workers, shares, strict=True):
                link.share = share
                link.send(self.start_message(share))
            self.started = True
            self._follow(delay=START_DELAY)  # a plan or shape: from the common instant
            await self.all_done.wait()
            self.steering.close()
            self.ended()
            self.servicer.end_all()
            if self.steering.failure is not None:  # a load shape's bad tick ended the run
                raise self.steering.failure
            return True
