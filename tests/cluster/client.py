"""A small asyncio client of the Kubernetes API, for our node (the kubelet stand-in) and the
service proxy: JSON over HTTPS with a client certificate, as a kubelet's own credentials are.

Only what those parts need: get, list, create, merge-patch, delete, a raw POST, and watches that
resume from the last resourceVersion and list afresh when the server says it is gone (410).
A refusal raises ``ApiError`` with the API server's status code, reason and message.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp

Obj = dict[str, Any]


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code, self.reason, self.message = code, reason, message


class Client:
    def __init__(self, url: str, ca: Path, cert: Path, key: Path) -> None:
        self.url = url
        self.context = ssl.create_default_context(cafile=str(ca))
        self.context.load_cert_chain(cert, key)
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self.context, limit=32)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        path: str,
        body: Obj | None = None,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Obj:
        url = f"{self.url}{path}" + (f"?{urlencode(query)}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        timeout = aiohttp.ClientTimeout(total=30)
        async with self.session.request(
            method, url, data=data, headers=headers, timeout=timeout
        ) as response:
            text = await response.text()
            if response.status >= 400:
                raise _error(response.status, text)
            return json.loads(text) if text else {}

    async def get(self, path: str, **query: str) -> Obj:
        return await self.request("GET", path, query=query or None)

    async def create(self, path: str, body: Obj) -> Obj:
        return await self.request("POST", path, body)

    async def patch(self, path: str, body: Obj) -> Obj:
        """A JSON merge patch (lists are replaced whole)."""
        return await self.request("PATCH", path, body, content_type="application/merge-patch+json")

    async def delete(self, path: str, body: Obj | None = None) -> Obj:
        return await self.request("DELETE", path, body)

    async def watch(self, path: str, **query: str) -> AsyncIterator[tuple[str, Obj]]:
        """("ADDED" | "MODIFIED" | "DELETED" | "SYNCED", object) for ever: first every object
        listed (then one "SYNCED" with the list), then each change as it comes, resumed across
        the server's watch timeouts and broken connections, listed afresh when the
        resourceVersion has expired (410)."""
        while True:
            listing = await self.get(path, **query)
            for item in listing.get("items") or []:
                yield "ADDED", item
            yield "SYNCED", listing
            version = listing["metadata"]["resourceVersion"]
            while version:
                params = {
                    **query,
                    "watch": "1",
                    "resourceVersion": version,
                    "allowWatchBookmarks": "true",
                    "timeoutSeconds": "300",
                }
                url = f"{self.url}{path}?{urlencode(params)}"
                timeout = aiohttp.ClientTimeout(total=None, sock_read=330)
                try:
                    async with self.session.get(url, timeout=timeout) as response:
                        if response.status == 410:
                            break
                        if response.status >= 400:
                            raise _error(response.status, await response.text())
                        async for kind, obj in _events(response):
                            if kind == "ERROR":
                                version = "" if obj.get("code") == 410 else version
                                break
                            version = obj["metadata"].get("resourceVersion", version)
                            if kind != "BOOKMARK":
                                yield kind, obj
                except (aiohttp.ClientError, TimeoutError):
                    await asyncio.sleep(0.5)  # the server restarted or dropped us: resume


async def _events(response: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, Obj]]:
    """The watch events of a response, one JSON object a line (however long the line)."""
    buffer = b""
    async for chunk in response.content.iter_any():
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.strip():
                event = json.loads(line)
                yield event["type"], event["object"]


def _error(code: int, text: str) -> ApiError:
    try:
        status = json.loads(text)
        return ApiError(code, status.get("reason", ""), status.get("message", text))
    except ValueError:
        return ApiError(code, "", text)


def named(obj: Obj) -> str:
    return str(obj["metadata"]["name"])


def namespaced(obj: Obj) -> tuple[str, str]:
    return (obj["metadata"]["namespace"], obj["metadata"]["name"])


async def mirror(
    client: Client,
    path: str,
    into: dict[Any, Obj],
    ready: asyncio.Event,
    changed: asyncio.Event,
    key: Callable[[Obj], Any] = namespaced,
) -> None:
    """Keep ``into`` (key → object) what the API server holds at ``path``, as an informer's
    cache does: ``ready`` once listed, ``changed`` at every change (the node's service proxy
    and policy agent rewrite their rules from theirs)."""
    async for kind, obj in client.watch(path):
        if kind == "SYNCED":
            ready.set()
            continue
        if kind == "DELETED":
            into.pop(key(obj), None)
        else:
            into[key(obj)] = obj
        changed.set()


async def coalesce(changed: asyncio.Event, write: Callable[[], Awaitable[None]]) -> None:
    """Call ``write`` after changes, once for a burst of them (20 ms apart at most)."""
    while True:
        await changed.wait()
        await asyncio.sleep(0.02)
        changed.clear()
        await write()
