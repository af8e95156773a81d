"""The worker's line to its manager, on threads of its own.

Why threads: a worker's users may saturate its event loop. Heartbeats that shared that loop would
stall, and the manager would take a busy worker for a dead one (locust#1843, #3065). Here the gRPC
stream, its heartbeats and its reader run on threads of their own (sync gRPC); the users' loop only
hands messages over, and says how late its own timers fire (loop lag) for the heartbeats to carry.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from gaggle.distributed.protocol import HEARTBEAT_INTERVAL, MANAGER_SILENCE
from gaggle.distributed.security import CHANNEL_OPTIONS, channel_credentials
from gaggle.options import Role
from gaggle.wire import gaggle_pb2 as wire
from gaggle.wire import gaggle_pb2_grpc as wire_grpc

log = logging.getLogger(__name__)


class WorkerError(Exception):
    """The worker cannot take part: ``exit_code`` says how bad (2 for refusal or no manager)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ManagerLink:
    """One ``Join`` stream. ``deliver`` is called from the link's reader thread with each message
    from the manager, then once with None when the stream has ended (``error`` says why, if it
    did not end cleanly)."""

    def __init__(self, role: Role, deliver: Callable[[wire.ManagerMessage | None], None]) -> None:
        self.address = f"{role.manager_host}:{role.manager_port}"
        self.loop_lag: Callable[[], float] = lambda: 0.0  # the users' loop's, for heartbeats
        self.error = ""
        self._role = role
        self._deliver = deliver
        self._outbox: queue.SimpleQueue[wire.WorkerMessage | None] = queue.SimpleQueue()
        self._channel: grpc.Channel | None = None
        self._call: Any = None
        self._opened = time.monotonic()
        self._heard: float | None = None  # when the manager last said anything; None: not yet
        self._closed = threading.Event()

    def connect(self) -> None:
        """Block until the manager answers (gRPC retries with backoff) or --join-timeout passes."""
        credentials = channel_credentials(self._role)
        self._channel = (
            grpc.secure_channel(self.address, credentials, CHANNEL_OPTIONS)
            if credentials is not None
            else grpc.insecure_channel(self.address, CHANNEL_OPTIONS)
        )
        ready = grpc.channel_ready_future(self._channel)
        timeout = self._role.join_timeout
        try:
            ready.result(timeout=min(1.0, timeout))
        except grpc.FutureTimeoutError:
            log.warning("waiting for the manager at %s (up to %.0f s)", self.address, timeout)
            try:
                ready.result(timeout=max(0.0, timeout - 1.0))
            except grpc.FutureTimeoutError:
                self._channel.close()
                hint = ", and the TLS certificates" if self._role.tls else ""
                raise WorkerError(
                    f"no manager answered at {self.address} within {timeout:g} s (is it running? "
                    f"check --manager-host/--manager-port{hint})",
                    2,
                ) from None

    def open(self, hello: wire.Hello) -> None:
        assert self._channel is not None, "connect() first"
        self._outbox.put(wire.WorkerMessage(hello=hello))
        self._opened = time.monotonic()
        self._call = wire_grpc.GaggleStub(self._channel).Join(self._requests())
        threading.Thread(target=self._read, name="gaggle-link-read", daemon=True).start()
        threading.Thread(target=self._watch, name="gaggle-link-watch", daemon=True).start()

    def send(self, message: wire.WorkerMessage) -> None:
        self._outbox.put(message)

    def close(self) -> None:
        self._closed.set()
        self._outbox.put(None)
        if self._call is not None:
            self._call.cancel()
        if self._channel is not None:
            self._channel.close()

    def _requests(self) -> Iterator[wire.WorkerMessage]:
        """What the worker says, with a heartbeat at least every second whatever else it says."""
        next_beat = time.monotonic() + HEARTBEAT_INTERVAL
        while True:
            now = time.monotonic()
            if now >= next_beat:
                next_beat = now + HEARTBEAT_INTERVAL
                yield wire.WorkerMessage(heartbeat=wire.Heartbeat(loop_lag_seconds=self.loop_lag()))
            try:
                message = self._outbox.get(timeout=max(0.0, next_beat - time.monotonic()))
            except queue.Empty:
                continue
            if message is None:
                return
            yield message

    def _read(self) -> None:
        try:
            for message in self._call:
                self._heard = time.monotonic()
                if not message.HasField("heartbeat"):
                    self._deliver(message)
        except grpc.RpcError as error:
            if not self._closed.is_set() and not self.error:
                self.error = error.code().name
        self._deliver(None)

    def _watch(self) -> None:
        """Silence is counted from the manager's first answer. A manager under load may take
        seconds to admit a worker; cancelling then lost the worker in the instant it was
        admitted (review D17), so the hello has as long to be answered as the connection had
        (--join-timeout), and never less than a silence."""
        patience = max(self._role.join_timeout, MANAGER_SILENCE)
        while not self._closed.wait(HEARTBEAT_INTERVAL / 2):
            heard, now = self._heard, time.monotonic()
            if heard is None and now - self._opened > patience:
                self.error = f"no answer to its hello within {patience:g} s"
            elif heard is not None and now - heard > MANAGER_SILENCE:
                self.error = f"no word from it for {MANAGER_SILENCE:.0f} s"
            else:
                continue
            self._call.cancel()
            return
