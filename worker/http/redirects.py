"""Following redirects in the engine, for clients whose responses hide the redirect chain.

pyreqwest's responses carry neither the final URL nor the redirect history, which the requests
log (``final_url``, ``redirected``) and ``--sticky-follow`` need, so the reqwest client runs with
its own redirects off and asks ``next_hop`` what to do with each 3xx. The rules are aiohttp's
(and browsers'): 303, and 301/302 after a POST, turn into a body-less GET; 307/308 resend the
request as it was; the ``MAX_REDIRECTS``-th redirect response fails the request.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import urljoin

MAX_REDIRECTS = 10  # aiohttp's default: at most 10 requests per redirect chain
REDIRECT_STATUSES = frozenset((301, 302, 303, 307, 308))


class Hop(NamedTuple):
    method: str
    url: str
    keep_body: bool


def next_hop(method: str, url: str, status: int, location: str | None) -> Hop | None:
    """Where a response sends the request next, or None when it is final (no Location)."""
    if status not in REDIRECT_STATUSES or not location:
        return None
    target = urljoin(url, location)
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        return Hop("GET", target, keep_body=False)
    return Hop(method, target, keep_body=True)
