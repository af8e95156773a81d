"""The one seam between the engine and an HTTP library.

A user owns one ``HttpClient`` (its own cookie jar and keep-alive connections). The engine asks
it to ``send`` a request and gets back an ``Exchange``: the final status, headers and body after
redirects, or a transport error as text. Clients never raise for network trouble — a refused or
reset connection is a measured outcome, not a crash — so every library plugged in here is counted
the same way. Three implementations: httptools_client (the default: the loop's sockets, llhttp),
reqwest_client (Rust's reqwest) and aiohttp_client; one behaviour suite runs against all three.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

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
