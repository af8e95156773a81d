"""Following redirects above the seam, the same way for every client.

Each client sends one request at a time and lets ``follow`` walk the chain: pyreqwest's
responses carry neither the final URL nor the redirect history, which the requests log
(``final_url``, ``redirected``) and ``--sticky-follow`` need, httptools has no redirect logic of
its own, and aiohttp's would be a second set of rules to keep equal. The rules are aiohttp's
(and browsers'): 303, and 301/302 after a POST, turn into a body-less GET; 307/308 resend the
request as it was; the ``MAX_REDIRECTS``-th redirect response fails the request; a task's
Authorization, Proxy-Authorization and Cookie headers are not sent on to another origin.

A Location the chain cannot go on to (not a URL, a port out of range, another scheme) ends it
where it is: the 3xx that was served is the request's record, failed with the seam's text for
it, as aiohttp's own walk refuses such a Location rather than guess.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import NamedTuple, Protocol
from urllib.parse import urljoin, urlsplit

from gaggle.http.seam import (
    DEFAULT_TIMEOUT,
    LOCATION_NOT_A_URL,
    LOCATION_NOT_HTTP,
    TIMEOUT,
    TOO_MANY_REDIRECTS,
    Exchange,
    NoResponse,
    RequestOptions,
    wire_url,
)

MAX_REDIRECTS = 10  # aiohttp's default: at most 10 requests per redirect chain
REDIRECT_STATUSES = frozenset((301, 302, 303, 307, 308))


class Hop(NamedTuple):
    method: str
    url: str
    keep_body: bool


class BadLocation(Exception):
    """A redirect's Location the chain cannot go on to; ``str(error)`` is the failure text."""


class HopAnswer(Protocol):
    """One response of the chain (a hop's answer), its body not necessarily read yet."""

    @property
    def status(self) -> int: ...

    def location(self) -> str | None:
        """The Location header; raises ``BadLocation`` when it cannot be read as text."""
        ...

    async def exchange(self, url: str, redirected: bool) -> Exchange: ...


class SendHop(Protocol):
    """Sends one request of the chain; raises ``NoResponse`` when it gets no answer."""

    def __call__(
        self, method: str, url: str, options: RequestOptions, body: bool, timeout: float
    ) -> Awaitable[HopAnswer]: ...


def next_hop(method: str, url: str, status: int, location: str | None) -> Hop | None:
    """Where a response sends the request next, or None when it is final (no Location);
    raises ``BadLocation`` when the Location is not an http(s) URL the chain can go on to."""
    if status not in REDIRECT_STATUSES or not location:
        return None
    target = _resolve(url, location)
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        return Hop("GET", target, keep_body=False)
    return Hop(method, target, keep_body=True)


async def follow(
    send: SendHop, method: str, url: str, target: str, options: RequestOptions, answer: HopAnswer
) -> Exchange:
    """Walk a redirect chain from its first ``answer``; the Exchange of its last response.

    ``url`` is what the task asked for (failures are recorded against it), ``target`` the URL
    that gave ``answer`` (``url`` with its query parameters). The whole chain shares the
    request's timeout.
    """
    deadline = time.perf_counter() + (options.timeout or DEFAULT_TIMEOUT)
    body, hops, origin = True, 0, _origin(target)
    while True:
        try:
            hop = next_hop(method, target, answer.status, answer.location())
        except BadLocation as bad:  # the chain ends at this 3xx, served and recorded
            exchange = await answer.exchange(target, hops > 0)
            exchange.error = str(bad)
            return exchange
        if hop is None:
            return await answer.exchange(target, hops > 0)
        hops += 1
        if hops >= MAX_REDIRECTS:  # aiohttp's count: 10 responses, none of them final
            return Exchange(status=0, final_url=url, error=TOO_MANY_REDIRECTS)
        method, target, body = hop.method, hop.url, body and hop.keep_body
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            return Exchange(status=0, final_url=url, error=TIMEOUT)
        if options.headers and _origin(target) != origin:
            options = _for_another_origin(options)
        try:
            answer = await send(method, target, options, body, remaining)
        except NoResponse as failure:
            return Exchange(status=0, final_url=url, error=str(failure))


def _resolve(url: str, location: str) -> str:
    """``location`` read against ``url``, checked as the next hop's client would read it, and
    written as it goes on the wire (a Location's spaces and UTF-8 are escaped as a task's)."""
    try:
        target = urljoin(url, location)
        parts = urlsplit(target)
        host, _ = parts.hostname, parts.port  # .port raises for one out of range or not a number
    except ValueError:  # an unclosed [IPv6] host, a bad port: no URL a client can send to
        raise BadLocation(LOCATION_NOT_A_URL) from None
    if parts.scheme not in ("http", "https"):
        raise BadLocation(LOCATION_NOT_HTTP)
    if not host:
        raise BadLocation(LOCATION_NOT_A_URL)
    return wire_url(target)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


_ORIGIN_BOUND = frozenset(("authorization", "proxy-authorization", "cookie"))


def _for_another_origin(options: RequestOptions) -> RequestOptions:
    """The options without the task's credentials (the jar's cookies still go where they may)."""
    headers = {k: v for k, v in (options.headers or {}).items() if k.lower() not in _ORIGIN_BOUND}
    return RequestOptions(
        headers, None, options.data, options.json, options.timeout, options.allow_redirects
    )
