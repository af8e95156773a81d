"""A simulated user: runs one TaskSet instance's tasks, pass after pass of its cycle.

Per request the hot path is: a clock read, the client's send, one record into the aggregator and
an append to the requests log when one is open. Tasks that raise are counted as failed and the
user goes on, whatever they raise (``SystemExit``, ``KeyboardInterrupt`` and ``CancelledError``
too: only the run's own cancel ends a user); a stopping user lets the request in flight finish,
then runs its on_stop tasks — for the stop timeout at most: then the run cancels it, and what it
was doing is counted abandoned.
Each user has its own stop signal — a plan that lowers the users stops some, the run's stop
stops them all. Both load models run a user the same way (``run_user``); only where its passes
come from differs (``Iterations``): a closed model's user loops until stopped (or --iterations N
passes), an open model's runs one pass per arrival it takes.
"""

from __future__ import annotations

import asyncio
import random
import time
from abc import ABC, abstractmethod
from pathlib import Path
from types import FrameType
from typing import Any, ClassVar
from urllib.parse import urlsplit

from gaggle.http import HttpClient, RequestOptions
from gaggle.kits import StopSignal
from gaggle.metrics import RequestRecord, TaskRecord
from gaggle.response import Response
from gaggle.taskset import TaskSet, TaskSpec, spec_of_code
from gaggle.users.context import RunContext
from gaggle.wait import pacing

YIELD_EVERY = 8  # tasks run without a pause between two explicit turns of the event loop
# A record is made as tuple.__new__ makes it: a named tuple's own __new__ is a Python function,
# a frame per record (two a request) even in the compiled engine. Fields go in their order.
_new_record = tuple.__new__


class StopRequested(BaseException):
    """Raised into a loop task that makes a request after the run began to stop.

    A BaseException so that a task's own ``except Exception`` cannot swallow it.
    """


def ends_the_user(error: BaseException) -> bool:
    """``error`` is not the task's to count: the run cancelled this user (the stop timeout, an
    abort) or its coroutine is being closed. A ``CancelledError`` the task raised itself, with
    no cancel asked of its asyncio task, is a task failure like any other exception."""
    if isinstance(error, GeneratorExit):
        return True
    if not isinstance(error, asyncio.CancelledError):
        return False
    current = asyncio.current_task()
    return current is None or current.cancelling() > 0


class TaskPlan:
    """The order a task set's tasks run in, computed once per task set."""

    __slots__ = ("on_start", "on_stop", "sequenced", "shuffled")

    def __init__(self, taskset: type[TaskSet]) -> None:
        indexed = list(enumerate(taskset.tasks))

        def by_sequence(item: tuple[int, TaskSpec]) -> tuple[float, int]:
            index, spec = item
            return (spec.sequence if spec.sequence is not None else float("inf"), index)

        self.on_start = sorted((t for t in indexed if t[1].on_start), key=by_sequence)
        self.on_stop = sorted((t for t in indexed if t[1].on_stop), key=by_sequence)
        loop = [t for t in indexed if not (t[1].on_start or t[1].on_stop)]
        self.sequenced = [
            t
            for t in sorted(loop, key=by_sequence)
            if t[1].sequence is not None
            for _ in range(t[1].weight)
        ]
        self.shuffled = [t for t in loop if t[1].sequence is None for _ in range(t[1].weight)]

    def cycle(self) -> list[tuple[int, TaskSpec]]:
        """One pass of the loop: sequenced tasks in order, then the rest by weight, shuffled."""
        if len(self.shuffled) < 2:
            return self.sequenced + self.shuffled
        rest = self.shuffled[:]
        random.shuffle(rest)
        return self.sequenced + rest


class User:
    """The engine's side of a TaskSet instance (its ``_gaggle``): client, state, bookkeeping."""

    __slots__ = (
        "_client",
        "base_url",
        "ctx",
        "intended_start",
        "may_request_while_stopping",
        "stop",
        "task_failed",
        "taskset_index",
        "unyielded",
        "user_index",
    )

    def __init__(
        self,
        ctx: RunContext,
        user_index: int,
        taskset_index: int,
        base_url: str,
        client: HttpClient,
    ) -> None:
        self.ctx = ctx
        self.user_index = user_index
        self.taskset_index = taskset_index
        self.base_url = base_url
        self.task_failed = False
        self.unyielded = 0  # tasks run since this user last gave the event loop a turn
        self.may_request_while_stopping = False
        self.stop = StopSignal()  # set by the run's stop, or to stop this user alone
        # When the next request was due (perf_counter): an arrival's instant or a pace slot.
        # Its first request is timed from there (wrk2's correction), then it is cleared.
        self.intended_start: float | None = None
        self._client = client

    async def request(
        self, method: str, path: str, name: str | None, options: RequestOptions
    ) -> Response:
        ctx = self.ctx
        if self.stop.is_set() and not self.may_request_while_stopping:
            raise StopRequested
        if ctx.throttle is not None:
            await ctx.throttle.acquire()
            if self.stop.is_set() and not self.may_request_while_stopping:
                raise StopRequested
        if path.startswith(("http://", "https://")):
            url = path
        else:
            url = self.base_url + (path if path[:1] == "/" else "/" + path)
        started = time.perf_counter()
        intended, self.intended_start = self.intended_start, None
        try:
            exchange = await self._client.send(method, url, options)
        except asyncio.CancelledError as cancel:  # costs nothing until raised (3.11)
            if ends_the_user(cancel):
                ctx.aggregator.record_abandoned(request=True)
            raise
        ended = time.perf_counter()
        timed_from = started
        if intended is not None and intended < started and ctx.config.latency == "intended":
            timed_from = intended
        response_time_us = int((ended - timed_from) * 1_000_000)
        status = exchange.status
        record = _new_record(  # RequestRecord's fields, in order
            RequestRecord,
            (
                ctx.elapsed_ms(started),
                method,
                name or path,
                url,
                exchange.final_url,
                exchange.redirected,
                response_time_us,
                status,
                200 <= status < 400 and not exchange.error,
                False,
                self.user_index,
                exchange.error,
            ),
        )
        ctx.aggregator.record_request(record)
        if ctx.requests_log is not None:
            ctx.requests_log.append(record)
        if exchange.redirected and ctx.config.sticky_follow:
            self._follow(exchange.final_url)
        return Response(exchange, record)

    def _follow(self, final_url: str) -> None:
        """--sticky-follow: a redirect to another origin becomes this user's base URL."""
        parts = urlsplit(final_url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin != self.base_url:
            self.base_url = origin

    def set_verdict(
        self, response: Response, success: bool, tag: str | None, headers: Any, body: Any
    ) -> None:
        if not success:
            self.task_failed = True
        if response.record.success != success:
            record = response.record  # a set_failure's tag is the error its row shows
            updated = record._replace(success=success, update=True, error=tag or record.error)
            response.record = updated
            self.ctx.aggregator.flip_request(updated)
            if self.ctx.requests_log is not None:
                self.ctx.requests_log.append(updated)
        if tag is not None:
            self.log_debug(tag, response, headers, body)

    def log_debug(self, tag: str, response: Response | None, headers: Any, body: Any) -> None:
        sink = self.ctx.debug_log
        if sink is None:
            return
        if response is not None:
            headers = dict(response.headers) if headers is None else headers
            body = response.text if body is None else body
        sink.append(
            {
                "tag": tag,
                "request": response.record.log_fields() if response is not None else None,
                "header": headers,
                "body": None if self.ctx.config.no_debug_body else body,
            }
        )

    async def close(self) -> None:
        await self._client.close()


class Iterations(ABC):
    """Where one user's passes of its cycle come from: the load model's part in ``run_user``
    (``pool.UntilStopped``, ``arrival_pool.PerArrival``).

    ``run_user`` calls ``begin`` once per pass, with no await: a closed model's pass may be a
    single task, so anything more would cost every request. It awaits ``wait`` only when no
    pass may begin now.
    """

    __slots__ = ()

    # True: a pass once begun runs whole, as k6's iterations do (an open model's arrival). The
    # stop does not cut it between tasks and its requests go on while the run stops; the user
    # pauses only between two of its tasks, as the next arrival says when the next pass begins.
    # False: the stop ends the user between any two tasks, and it pauses after each task, the
    # last of a pass too (the pause between passes).
    whole: ClassVar[bool]

    @abstractmethod
    def begin(self) -> bool:
        """Begin the next pass if one may begin now; False: none now (``wait`` says if one will)."""

    @abstractmethod
    async def wait(self) -> bool:
        """Until the next pass has begun (True) or the user has none left (False)."""

    @abstractmethod
    def abandon(self) -> None:
        """The task set's ``__init__`` raised: the user ends before its first pass."""


async def run_user(
    ctx: RunContext, taskset: type[TaskSet], plan: TaskPlan, user: User, iterations: Iterations
) -> None:
    """Run one user to the end: on_start tasks, each pass ``iterations`` begins, then on_stop
    tasks. A task set whose ``__init__`` raises is counted, and the run goes on without it."""
    instance = taskset.__new__(taskset)
    instance._gaggle = user
    stop = user.stop
    wait_time = taskset.wait_time
    whole = iterations.whole
    user.may_request_while_stopping = whole  # a whole pass's requests run on while stopping
    trailing = 0 if whole else 1  # 1: the last task of a pass is followed by a pause too
    pace = wait_time.seconds if isinstance(wait_time, pacing) else None
    due: float | None = None  # the pace slot of the next task (none before the first)
    try:
        taskset.__init__(instance)
        paused = len(plan.on_start) - 1 + trailing  # the tasks followed by a pause
        for position, (index, spec) in enumerate(plan.on_start):
            if not whole and stop.is_set():
                break
            seconds = await run_task(ctx, user, instance, index, spec)
            if position < paused:
                await pause(ctx, user, wait_time, seconds)
        while iterations.begin() or await iterations.wait():
            cycle = plan.cycle()
            paused = len(cycle) - 1 + trailing
            for position, (index, spec) in enumerate(cycle):
                if not whole:
                    if stop.is_set():
                        break
                    if pace is not None:
                        due = paced_slot(ctx, user, pace, due)
                seconds = await run_task(ctx, user, instance, index, spec)
                if position < paused:
                    await pause(ctx, user, wait_time, seconds)
        user.may_request_while_stopping = True
        for index, spec in plan.on_stop:
            await run_task(ctx, user, instance, index, spec)
    except BaseException as error:  # __init__ raised: count it, the run goes on without this user
        if ends_the_user(error):
            raise
        ctx.task_failed(f"{taskset.__name__}.__init__", error)
        iterations.abandon()
    finally:
        await user.close()


def paced_slot(ctx: RunContext, user: User, pace: float | None, due: float | None) -> float | None:
    """A pacing() task set: this task was due at ``due`` (the previous one's start plus the
    pace), so its first request is timed from there and how late it began is schedule lag.
    Returns the next task's slot."""
    if pace is None:
        return None
    now = time.perf_counter()
    if due is not None:
        user.intended_start = due
        ctx.aggregator.record_lag(int(max(0.0, now - due) * 1_000_000))
    return now + pace


async def pause(ctx: RunContext, user: User, wait_time: Any, task_seconds: float) -> None:
    delay = wait_time(task_seconds) if wait_time is not None else 0.0
    if delay > 0:
        await user.stop.sleep(delay)
        return
    # A task with no I/O must not starve the other users, but a turn of the loop per task
    # costs every task that did wait on the network: give it every YIELD_EVERY tasks.
    user.unyielded += 1
    if user.unyielded >= YIELD_EVERY:
        user.unyielded = 0
        await asyncio.sleep(0)


async def run_task(
    ctx: RunContext, user: User, instance: TaskSet, index: int, spec: TaskSpec
) -> float:
    """Run one task; record it; return how long it took in seconds."""
    user.task_failed = False
    started = time.perf_counter()
    try:
        await spec.func(instance)
        success = not user.task_failed
    except StopRequested:
        return 0.0  # cut short by the stop: neither a success nor a failure
    except Exception as error:
        success = False
        ctx.task_failed(f"task {type(instance).__name__}.{spec.name}", error)
    except BaseException as error:  # SystemExit, KeyboardInterrupt, CancelledError...
        if ends_the_user(error):
            if not isinstance(error, GeneratorExit):
                ctx.aggregator.record_abandoned(request=False)
            raise
        success = False
        ctx.task_failed(f"task {type(instance).__name__}.{spec.name}", error)
    seconds = time.perf_counter() - started
    ctx.aggregator.record_task(
        _new_record(  # TaskRecord's fields, in order
            TaskRecord,
            (
                ctx.elapsed_ms(started),
                user.taskset_index,
                index,
                spec.name,
                int(seconds * 1_000_000),
                success,
                user.user_index,
            ),
        )
    )
    return seconds


def task_on_stack(frame: FrameType | None) -> tuple[str, str] | None:
    """The task a stack is in, as (``Shop.checkout``, ``shop.py:12``: its line running now), or
    None: the loop watch's question when the loop stalls. The outermost frame that runs a task's
    function is the task ``run_task`` called (a task may call another's function); frames are
    matched by code object (``taskset.spec_of_code``), since the engine's own frames are not on
    the stack when it is compiled. The hot path publishes nothing: a store per task would name
    the task that started last, not the one running (the users' tasks interleave)."""
    found: tuple[FrameType, TaskSpec] | None = None
    while frame is not None:
        spec = spec_of_code(frame.f_code)
        if spec is not None:
            found = frame, spec
        frame = frame.f_back
    if found is None:
        return None
    frame, spec = found
    code = frame.f_code
    instance = frame.f_locals.get(code.co_varnames[0]) if code.co_argcount else None
    owner = type(instance).__name__ if isinstance(instance, TaskSet) else "?"
    return f"{owner}.{spec.name}", f"{Path(code.co_filename).name}:{frame.f_lineno}"
