"""The HTTP seam (``HttpClient``, ``Exchange``) and its implementations."""

from gaggle.http.aiohttp_client import AiohttpClient
from gaggle.http.httptools_client import HttptoolsClient
from gaggle.http.reqwest_client import ReqwestClient
from gaggle.http.seam import (
    DEFAULT_TIMEOUT,
    ClientFactory,
    Exchange,
    Headers,
    HttpClient,
    Params,
    RequestOptions,
)

# --http-client and TaskSet.client name one of these (config.HTTP_CLIENTS lists the same names)
CLIENTS: dict[str, ClientFactory] = {
    "aiohttp": AiohttpClient,
    "httptools": HttptoolsClient,
    "reqwest": ReqwestClient,
}

__all__ = [
    "CLIENTS",
    "DEFAULT_TIMEOUT",
    "AiohttpClient",
    "ClientFactory",
    "Exchange",
    "Headers",
    "HttpClient",
    "HttptoolsClient",
    "Params",
    "RequestOptions",
    "ReqwestClient",
]
