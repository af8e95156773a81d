"""Streaming answers: watches (one JSON event a line) and pod logs (``follow`` included).

A watch starts from ``resourceVersion`` (replaying the history after it), or with synthetic
ADDED events for what exists when it is unset or "0"; a resourceVersion older than the kept
history answers with an ERROR event carrying a 410 Expired Status, as the real server does. Objects
leaving a label or field selection arrive as DELETED. Watches end after ``timeoutSeconds``; when
asked with ``allowWatchBookmarks`` a BOOKMARK is sent every few seconds of quiet. With ``Accept:
as=Table`` each event carries a one-row Table (as ``kubectl get -w`` asks).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from tests.cluster.resources import Resource
from tests.cluster.selectors import Matcher
from tests.cluster.store import ApiError, Obj, Store
from tests.cluster.table import table

QUIET = 5.0  # seconds between liveness checks (and bookmarks) while nothing happens
STOP = "STOP"  # put on a watcher's queue to end its stream (server shutdown)


async def stream_watch(
    request: web.Request, store: Store, res: Resource, namespace: str | None, match: Matcher
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    as_table = "as=Table" in request.headers.get("Accept", "")
    bookmarks = request.query.get("allowWatchBookmarks") in ("true", "1")
    loop = asyncio.get_running_loop()
    timeout = float(request.query.get("timeoutSeconds") or 1800)
    deadline = loop.time() + timeout

    async def send(kind: str, obj: Obj) -> None:
        if as_table and kind in ("ADDED", "MODIFIED", "DELETED"):
            obj = table(res, [obj], obj["metadata"].get("resourceVersion", ""))
        await response.write(json.dumps({"type": kind, "object": obj}).encode() + b"\n")

    try:
        watcher = store.watch(res, namespace, match, request.query.get("resourceVersion"))
    except ApiError as error:
        await send("ERROR", error.status())
        await response.write_eof()
        return response
    try:
        while (left := deadline - loop.time()) > 0:
            try:
                kind, obj = await asyncio.wait_for(watcher.queue.get(), min(left, QUIET))
            except TimeoutError:
                transport = request.transport
                if transport is None or transport.is_closing():
                    break
                if bookmarks:
                    meta = {"resourceVersion": str(store.rv)}
                    await send("BOOKMARK", {"kind": res.kind, "apiVersion": res.group_version,
                                            "metadata": meta})  # fmt: skip
                continue
            if kind == STOP:
                break
            await send(kind, obj)
        await response.write_eof()
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        store.watchers.discard(watcher)
    return response


LogSource = Callable[[str, str, str | None, bool, int | None, bool], AsyncIterator[bytes]]


async def stream_logs(
    request: web.Request, logs: LogSource, namespace: str, name: str
) -> web.StreamResponse:
    q = request.query
    follow = q.get("follow") in ("true", "1")
    tail = int(q["tailLines"]) if q.get("tailLines") else None
    previous = q.get("previous") in ("true", "1")
    chunks = logs(namespace, name, q.get("container"), follow, tail, previous)
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    response.enable_chunked_encoding()
    try:
        first = await anext(chunks, b"")
    except ApiError as error:
        return web.json_response(error.status(), status=error.code)
    await response.prepare(request)
    try:
        await response.write(first)
        async for chunk in chunks:
            await response.write(chunk)
        await response.write_eof()
    except ConnectionResetError:
        pass
    return response


def stop_all(store: Store) -> None:
    """End every open watch (at shutdown)."""
    for watcher in list(store.watchers):
        watcher.queue.put_nowait((STOP, {}))


__all__ = ["Any", "LogSource", "stop_all", "stream_logs", "stream_watch"]
