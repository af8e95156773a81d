"""The HTTP seam (``HttpClient``, ``Exchange``) and its implementations."""

from gaggle.http.aiohttp_client import AiohttpClient
from gaggle.http.seam import DEFAULT_TIMEOUT, ClientFactory, Exchange, HttpClient, RequestOptions

CLIENTS: dict[str, ClientFactory] = {"aiohttp": AiohttpClient}

__all__ = [
    "CLIENTS",
    "DEFAULT_TIMEOUT",
    "AiohttpClient",
    "ClientFactory",
    "Exchange",
    "HttpClient",
    "RequestOptions",
]
