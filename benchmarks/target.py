"""The benchmark's HTTP target: Debian's nginx when installed, else a small asyncio server.

Either way the target runs in its own process, pinned to its own CPU, listens on 127.0.0.1 only
and answers ``GET /`` with a tiny body over keep-alive connections. It is much faster than any
Python load generator, so the generator — not the target — is what a run measures.

``GET /__status`` reports how many requests the target has served (nginx's stub_status, or the
fallback's own counter), so the benchmark can compare each tool's count with the target's.

    python benchmarks/target.py --port 8080   # the fallback server on its own
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

NGINX = "/usr/sbin/nginx"
STATUS_PATH = "/__status"
BODY = b"ok\n"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\n" + BODY

NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile {nofile};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{
    worker_connections {connections};
    multi_accept on;
}}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location = / {{
            default_type text/plain;
            return 200 "ok\\n";
        }}
        location = {status} {{
            stub_status;
        }}
    }}
}}
"""


def raise_nofile_limit() -> int:
    """Raise this process's open-file limit to its hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
    return soft


def pinned_to(core: int) -> Callable[[], None]:
    """A ``preexec_fn``: the child runs on ``core`` only, with the open-file limit raised."""

    def setup() -> None:
        os.sched_setaffinity(0, {core})
        raise_nofile_limit()

    return setup


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Target:
    """A running target process; ``served()`` is its count of requests so far."""

    kind: str
    url: str
    process: subprocess.Popen[bytes]
    _status_queries: int = field(default=0)

    def served(self) -> int | None:
        """Requests served, excluding status queries; None when the target cannot tell."""
        try:
            with urllib.request.urlopen(self.url + STATUS_PATH, timeout=5) as reply:
                text = reply.read().decode()
        except OSError:
            return None
        self._status_queries += 1
        if self.kind == "nginx":  # "server accepts handled requests\n A H R": counts itself
            match = re.search(r"requests\s*\n\s*\d+\s+\d+\s+(\d+)", text)
            return int(match.group(1)) - self._status_queries if match else None
        match = re.search(r"requests (\d+)", text)
        return int(match.group(1)) if match else None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_target(core: int, workdir: Path, connections: int, prefer_nginx: bool = True) -> Target:
    """Start nginx (or the fallback) on a free port, pinned to ``core``; wait until it accepts."""
    port = free_port()
    log = (workdir / "target.log").open("wb")
    if prefer_nginx and Path(NGINX).exists():
        kind, argv = "nginx", nginx_command(workdir / "nginx", port, connections)
    else:
        kind, argv = "asyncio", [sys.executable, __file__, "--port", str(port)]
    process = subprocess.Popen(
        argv, stdout=log, stderr=subprocess.STDOUT, preexec_fn=pinned_to(core)
    )
    target = Target(kind, f"http://127.0.0.1:{port}", process)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{kind} target exited early; see {workdir / 'target.log'}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return target
        time.sleep(0.05)
    target.stop()
    raise RuntimeError(f"{kind} target did not listen on port {port} within 10 s")


def nginx_command(prefix: Path, port: int, connections: int) -> list[str]:
    """Write a self-contained config under ``prefix`` (no root-only paths) and return argv."""
    if prefix.exists():
        shutil.rmtree(prefix)
    prefix.mkdir(parents=True)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    nofile = hard if hard != resource.RLIM_INFINITY else max(soft, 2 * connections)
    conf = NGINX_CONF.format(
        prefix=prefix,
        port=port,
        status=STATUS_PATH,
        nofile=nofile,
        connections=max(1024, min(connections, nofile - 64)),
    )
    (prefix / "nginx.conf").write_text(conf)
    return [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", "stderr"]


# --- the fallback server: keep-alive HTTP/1.1 on a bare asyncio protocol ----------------------
class _Counter:
    requests = 0


class _Http(asyncio.Protocol):
    """Answers every request with ``RESPONSE``; handles pipelining; ignores request bodies."""

    __slots__ = ("_buffer", "_transport")

    def __init__(self) -> None:
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data
        replies: list[bytes] = []
        while (end := buffer.find(b"\r\n\r\n")) >= 0:
            head, buffer = buffer[:end], buffer[end + 4 :]
            if head.startswith(b"GET " + STATUS_PATH.encode()):
                body = f"requests {_Counter.requests}\n".encode()
                replies.append(
                    b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                )
            else:
                _Counter.requests += 1
                replies.append(RESPONSE)
        self._buffer = buffer
        if replies and self._transport is not None:
            self._transport.write(b"".join(replies))


async def _serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Http, "127.0.0.1", port, backlog=4096, reuse_address=True)
    stopped = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopped.set)
    async with server:
        await stopped.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="A fast keep-alive HTTP target on 127.0.0.1.")
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    raise_nofile_limit()
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve(port))
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_serve(port))


if __name__ == "__main__":
    main()
