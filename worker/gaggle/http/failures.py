"""What each library raises, as the seam's failure texts: one map, so that one kind of failure
reads alike whichever client met it (as httpx maps its transports' exceptions).

A text names the kind and nothing that varies with the request: no URL, no byte counts, no
library wording, no status the server never sent (aiohttp reports a response it cannot parse as
a 400). An answer that is not HTTP/1.1 is read by llhttp (httptools, aiohttp) or hyper (reqwest),
and both say what is wrong in their own words: ``_LLHTTP`` and ``_HYPER`` put them in the seam's
few kinds (bad status line, bad header, …); a chunked body that breaks is a body cut short.

aiohttp and pyreqwest are imported by the function that maps their errors: only their own client
calls it, so a run on another client never loads them (~14 and ~7 MiB).
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from gaggle.http.seam import (
    BAD_CONTENT_LENGTH,
    BAD_HEADER,
    BAD_STATUS_LINE,
    BAD_TRANSFER_ENCODING,
    CONNECTION_REFUSED,
    CONTENT_LENGTH_WITH_TRANSFER_ENCODING,
    HEAD_TOO_LARGE,
    MALFORMED,
    PAYLOAD_INCOMPLETE,
    SERVER_DISCONNECTED,
    TIMEOUT,
    connect_error,
    connection_error,
    dns_error,
    invalid_url,
    os_reason,
    tls_error,
    unexpected_error,
)

if TYPE_CHECKING:
    import aiohttp

_LLHTTP = {  # llhttp's reasons for a response it cannot read (its error strings)
    **dict.fromkeys(
        (
            "Expected HTTP/, RTSP/ or ICE/",
            "Expected HTTP/2 Connection Preface",
            "Invalid HTTP version",
            "Invalid major version",
            "Invalid minor version",
            "Expected dot",
            "Expected space after version",
            "Expected CRLF after version",
            "Invalid status code",
            "Invalid response status",
            "Missing expected CR after response line",
            "Unexpected space after start line",
        ),
        BAD_STATUS_LINE,
    ),
    **dict.fromkeys(
        (
            "Invalid header token",
            "Invalid header field char",
            "Invalid header value char",
            "Missing expected CR after header value",
            "Missing expected LF after header value",
            "Unexpected whitespace after header value",
            "Expected LF after headers",
        ),
        BAD_HEADER,
    ),
    **dict.fromkeys(
        (
            "Invalid character in Content-Length",
            "Duplicate Content-Length",
            "Empty Content-Length",
            "Content-Length overflow",
        ),
        BAD_CONTENT_LENGTH,
    ),
    "Invalid `Transfer-Encoding` header value": BAD_TRANSFER_ENCODING,
    "Empty Transfer-Encoding": BAD_TRANSFER_ENCODING,
    "Content-Length can't be present with Transfer-Encoding": CONTENT_LENGTH_WITH_TRANSFER_ENCODING,
    "Transfer-Encoding can't be present with Content-Length": CONTENT_LENGTH_WITH_TRANSFER_ENCODING,
    "Too many headers received": HEAD_TOO_LARGE,  # aiohttp's own check, beside llhttp's
}

_HYPER = {  # hyper's parse errors, the last of a reqwest error's causes
    "invalid HTTP version parsed": BAD_STATUS_LINE,
    "invalid HTTP status-code parsed": BAD_STATUS_LINE,
    "invalid HTTP header parsed": BAD_HEADER,
    "invalid content-length parsed": BAD_CONTENT_LENGTH,
    "invalid transfer-encoding parsed": BAD_TRANSFER_ENCODING,
    "unexpected transfer-encoding parsed": BAD_TRANSFER_ENCODING,
    "message head is too large": HEAD_TOO_LARGE,
}


def from_llhttp(reason: str) -> str:
    """An llhttp error's reason (``Invalid header token``) as the seam's text."""
    if "chunk" in reason:  # the head was read; the body broke off
        return PAYLOAD_INCOMPLETE
    return _LLHTTP.get(reason, MALFORMED)


# --- aiohttp ------------------------------------------------------------------------------------
def from_aiohttp(error: BaseException) -> str:
    """The seam's text for what an aiohttp request raised."""
    import aiohttp

    if isinstance(error, asyncio.TimeoutError):
        return TIMEOUT
    if isinstance(error, aiohttp.ClientConnectorDNSError):
        return dns_error(error.host)
    if isinstance(error, aiohttp.ClientConnectorCertificateError):
        return tls_error(error.host, error.port or 0)  # None only off TCP (a unix socket)
    if isinstance(error, aiohttp.ClientConnectorError):
        return connect_error(error.host, error.port or 0, os_reason(error.os_error))
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return SERVER_DISCONNECTED
    if isinstance(error, aiohttp.ClientOSError):
        return connection_error(os_reason(error))
    if isinstance(error, aiohttp.ClientPayloadError):
        return PAYLOAD_INCOMPLETE  # aiohttp's texts carry byte counts: one per kind
    if isinstance(error, aiohttp.InvalidURL):
        return invalid_url(str(error.url))
    if isinstance(error, aiohttp.NonHttpUrlClientError):  # ftp://…: its text is the URL
        return invalid_url(str(error))
    if isinstance(error, aiohttp.ClientResponseError):  # never for a status: no raise_for_status
        return _unparsed(error)
    return unexpected_error(error)


def _unparsed(error: aiohttp.ClientResponseError) -> str:
    """A response aiohttp's parser refused: the parser's error is the first in the chain."""
    from aiohttp import http_exceptions

    origin: BaseException | None = error
    while origin is not None and origin.__cause__ is not None:  # aiohttp copies it once
        origin = origin.__cause__
    if isinstance(origin, http_exceptions.LineTooLong):
        return HEAD_TOO_LARGE
    if isinstance(origin, http_exceptions.BadStatusLine):
        return BAD_STATUS_LINE
    if isinstance(origin, http_exceptions.InvalidHeader):
        return BAD_HEADER
    if isinstance(
        origin, http_exceptions.TransferEncodingError | http_exceptions.ContentLengthError
    ):
        return PAYLOAD_INCOMPLETE
    if isinstance(origin, http_exceptions.HttpProcessingError):
        return from_llhttp(origin.message.partition(":\n")[0].strip())  # "<reason>:\n\n  b'…'"
    return MALFORMED


# --- reqwest ------------------------------------------------------------------------------------
_OS_ERROR = re.compile(r" \(os error \d+\)$")


def from_reqwest(error: BaseException, url: str) -> str:
    """The seam's text for what a reqwest request to ``url`` raised (a ``ValueError``: a URL
    reqwest could not parse)."""
    from pyreqwest.exceptions import (
        BodyDecodeError,
        BuilderError,
        ConnectError,
        DecodeError,
        NetworkError,
        PyreqwestError,
        ReadError,
        RequestTimeoutError,
    )

    if isinstance(error, RequestTimeoutError):
        return TIMEOUT
    if isinstance(error, BuilderError) or not isinstance(error, PyreqwestError):
        return invalid_url(url)  # what reqwest refused to send, or could not parse
    causes = _causes(error)
    last = causes[-1] if causes else ""
    if isinstance(error, ConnectError) and "client error (Connect)" in causes:
        host, port = _host_port(url)
        if "dns error" in causes:
            return dns_error(host)
        if any(cause.startswith("invalid peer certificate") for cause in causes):
            return tls_error(host, port)
        return connect_error(host, port, _reason(last))
    if isinstance(error, NetworkError):
        if "connection closed before message completed" in causes:
            return SERVER_DISCONNECTED
        if isinstance(error, ReadError) and not _OS_ERROR.search(last):
            return PAYLOAD_INCOMPLETE
        return connection_error(_reason(last) if causes else "unknown")
    if isinstance(error, BodyDecodeError):
        return PAYLOAD_INCOMPLETE
    if isinstance(error, DecodeError):  # the head did not parse: hyper says why, last
        return _HYPER.get(last, MALFORMED)
    return unexpected_error(error)


def _causes(error: BaseException) -> list[str]:
    details = getattr(error, "details", None) or {}
    return [cause["message"] for cause in details.get("causes") or ()]


def _reason(message: str) -> str:
    """``Connection refused (os error 111)`` → the seam's wording for the same OS error."""
    reason = _OS_ERROR.sub("", message)
    return CONNECTION_REFUSED if reason == "Connection refused" else reason


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return parts.hostname or "", port or (443 if parts.scheme == "https" else 80)
