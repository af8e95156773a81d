"""The one seam between the engine and an HTTP library.

A user owns one ``HttpClient`` (its own cookie jar and keep-alive connections). The engine asks
it to ``send`` a request and gets back an ``Exchange``: the final status, headers and body after
redirects, or a transport error as text. Clients never raise for network trouble — a refused or
reset connection is a measured outcome, not a crash — so every library plugged in here is counted
the same way. Three implementations: httptools_client (the default: the loop's sockets, llhttp),
reqwest_client (Rust's reqwest) and aiohttp_client; one behaviour suite runs against all three.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode

DEFAULT_TIMEOUT = 60.0  # seconds for one request, body included


@dataclass(slots=True)
class RequestOptions:
    """What a task may pass besides method and URL; mirrors the common subset of aiohttp/httpx."""

    headers: Mapping[str, str] | None = None
    params: Mapping[str, str] | None = None
    data: Any = None
    json: Any = None
    timeout: float | None = None
    allow_redirects: bool = True


@dataclass(slots=True)
class Exchange:
    """What came back: status 0 and a non-empty ``error`` when no HTTP response arrived."""

    status: int
    final_url: str
    redirected: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str = ""


class HttpClient(Protocol):
    async def send(self, method: str, url: str, options: RequestOptions) -> Exchange: ...

    async def close(self) -> None: ...


class ClientFactory(Protocol):
    def __call__(self) -> HttpClient: ...


def encode_body(options: RequestOptions) -> tuple[bytes, str]:
    """``json=`` or ``data=`` as aiohttp encodes them (bytes, text, or form fields as a mapping
    or pairs), and the Content-Type the body gets unless the task sets its own; ``(b"", "")``
    without a body. One encoding for every client, so the target sees the same request."""
    data = options.data
    if options.json is not None:
        return jsonlib.dumps(options.json).encode(), "application/json"
    if data is None:
        return b"", ""
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data), "application/octet-stream"
    if isinstance(data, str):
        return data.encode(), "text/plain; charset=utf-8"
    if isinstance(data, Mapping | list | tuple):
        return urlencode(data).encode(), "application/x-www-form-urlencoded"
    raise TypeError(
        f"data={type(data).__name__} is not supported; use bytes, str, a mapping or a list of pairs"
    )
