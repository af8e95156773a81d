"""The HTTP seam (``HttpClient``, ``Exchange``) and its implementations."""

from gaggle.http.httptools_client import HttptoolsClient
from gaggle.http.seam import (
    DEFAULT_TIMEOUT,
    ClientFactory,
    Exchange,
    Headers,
    HttpClient,
    Params,
    RequestOptions,
)


# aiohttp (~14 MiB at import: it builds SSL contexts) and pyreqwest (~7 MiB) are loaded by the
# first user of their client, so a run on the default client never carries them.
def _aiohttp() -> HttpClient:
    from gaggle.http.aiohttp_client import AiohttpClient

    return AiohttpClient()


def _reqwest() -> HttpClient:
    from gaggle.http.reqwest_client import ReqwestClient

    return ReqwestClient()


# --http-client and TaskSet.client name one of these (config.HTTP_CLIENTS lists the same names)
CLIENTS: dict[str, ClientFactory] = {
    "aiohttp": _aiohttp,
    "httptools": HttptoolsClient,
    "reqwest": _reqwest,
}

__all__ = [
    "CLIENTS",
    "DEFAULT_TIMEOUT",
    "ClientFactory",
    "Exchange",
    "Headers",
    "HttpClient",
    "HttptoolsClient",
    "Params",
    "RequestOptions",
]
