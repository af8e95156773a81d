"""Headless Chromium driven over the DevTools protocol (a WebSocket; aiohttp is already ours).

``open_page`` loads a URL and returns what a person would see and what went wrong: console
errors, uncaught exceptions, every network request, the result of a script and a screenshot.
Chromium comes from Debian's package, installed when missing; the process is ours and is ended
by its handle.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.tools import debian_binary

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
)
START_TIMEOUT = 30.0
LOAD_TIMEOUT = 20.0


def chromium() -> str:
    """The path of chromium (Debian's package, installed when missing)."""
    return debian_binary("chromium", "chromium")


@dataclass
class Page:
    """What loading a page showed."""

    errors: list[str] = field(default_factory=list)  # console errors and uncaught exceptions
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    value: Any = None  # what the probe script returned
    screenshot: bytes = b""


class DevTools:
    """One page's DevTools session: commands with ids, events collected as they come."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        ident = self.next_id
        await self.socket.send_json({"id": ident, "method": method, "params": params})
        deadline = time.monotonic() + LOAD_TIMEOUT
        while time.monotonic() < deadline:
            message = await self.socket.receive(timeout=LOAD_TIMEOUT)
            data = json.loads(message.data)
            if data.get("id") == ident:
                assert "error" not in data, data
                result: dict[str, Any] = data.get("result", {})
                return result
            if "method" in data:
                self.events.append(data)
        raise TimeoutError(method)

    async def wait_for(self, event: str) -> None:
        deadline = time.monotonic() + LOAD_TIMEOUT
        while not any(e["method"] == event for e in self.events):
            assert time.monotonic() < deadline, f"no {event} within {LOAD_TIMEOUT} s"
            message = await self.socket.receive(timeout=LOAD_TIMEOUT)
            data = json.loads(message.data)
            if "method" in data:
                self.events.append(data)


def _errors(events: list[dict[str, Any]]) -> list[str]:
    found = []
    for event in events:
        params = event.get("params", {})
        if event["method"] == "Runtime.exceptionThrown":
            found.append(json.dumps(params["exceptionDetails"])[:500])
        elif event["method"] == "Runtime.consoleAPICalled" and params["type"] == "error":
            found.append(json.dumps(params["args"])[:500])
        elif event["method"] == "Log.entryAdded" and params["entry"]["level"] == "error":
            found.append(params["entry"]["text"][:500])
    return found


async def _drive(port: int, url: str, probe: str, size: tuple[int, int]) -> Page:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
            targets = await response.json()
        page_target = next(t for t in targets if t["type"] == "page")
        async with session.ws_connect(page_target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            tools = DevTools(ws)
            for domain in ("Runtime", "Log", "Network", "Page"):
                await tools.call(f"{domain}.enable")
            width, height = size
            await tools.call(
                "Emulation.setDeviceMetricsOverride",
                width=width,
                height=height,
                deviceScaleFactor=1,
                mobile=False,
            )
            await tools.call("Page.navigate", url=url)
            await tools.wait_for("Page.loadEventFired")
            await asyncio.sleep(0.3)  # one more frame for the charts' first paint
            result = await tools.call(  # a probe may be async: its promise is awaited
                "Runtime.evaluate", expression=probe, returnByValue=True, awaitPromise=True
            )
            shot = await tools.call("Page.captureScreenshot", format="png")
            requests = [
                e["params"]["request"]["url"]
                for e in tools.events
                if e["method"] == "Network.requestWillBeSent"
            ]
            return Page(
                errors=_errors(tools.events),
                requests=requests,
                value=result.get("result", {}).get("value"),
                screenshot=base64.b64decode(shot["data"]),
            )


def open_page(url: str, probe: str, size: tuple[int, int] = (1280, 1400)) -> Page:
    """Load ``url`` in a fresh headless Chromium, run ``probe`` (a JS expression), look."""
    binary = chromium()
    with tempfile.TemporaryDirectory(prefix="gaggle-chromium-") as profile:
        process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its helpers share our child's group, ended with it
        )
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + START_TIMEOUT
            while not port_file.exists() or not port_file.read_text().strip():
                assert process.poll() is None, "chromium exited at start"
                assert time.monotonic() < deadline, "chromium did not open its DevTools port"
                time.sleep(0.05)
            port = int(port_file.read_text().split()[0])
            return asyncio.run(_drive(port, url, probe, size))
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()  # our own child, by its handle
                process.wait()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # helpers left in the group we made
