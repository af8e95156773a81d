"""A user's cookie jar, one for every client: pyreqwest's RFC 6265 store (Rust's cookie_store
crate), fed and read the same way whichever client met the response.

Why borrow a store: a jar's rules (domain and path matching, expiry, Secure, HttpOnly,
host-only cookies) are where a hand-written jar goes wrong, and it is the store reqwest's
client keeps its cookies in, so all three clients keep cookies alike: reqwest hands it each
response itself, httptools through ``CookieJar.receive``, aiohttp through its jar hook
(``aiohttp_client``), and httptools and aiohttp send what ``CookieJar.header`` gives, as reqwest
sends what the store matches. Named here, as the seam's one cookie dependency, rather than
imported inside a client: replacing it is a change to this module.

What a server sends is never an error (RFC 6265 §5.2–5.3): the store refuses a Set-Cookie the
RFC says to ignore — no ``=`` or an empty name, a ``Domain`` the request's host is not in — and
one already expired (``Max-Age=0`` or less, a past ``Expires``), after deleting the cookie of
that name, domain and path when the user holds one: a logout. ``receive`` drops what the store
refuses, as reqwest's client does, so a response is always recorded whatever cookies it sets.
``Expires`` dates are read as RFC 9110 writes them (IMF-fixdate, RFC 850, asctime, and the
``01-Jan-1970`` of PHP); RFC 6265's own date algorithm (§5.1.1) is more lenient, and a date only
it reads (no ``GMT``, a one-digit day, lower case) is ignored here as one that does not parse
(§5.2.1): the cookie stays a session cookie, for every client alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyreqwest.cookie import CookieStore


class CookieJar:
    """One user's cookies; ``store`` is what a reqwest client is given to keep them in."""

    __slots__ = ("store",)

    def __init__(self) -> None:
        # Imported by the first jar (a user's first Set-Cookie, or a reqwest user): a run whose
        # users never get a cookie never loads pyreqwest (~7 MiB).
        from pyreqwest.cookie import CookieStore

        self.store: CookieStore = CookieStore()

    def receive(self, set_cookies: Iterable[str], url: str) -> None:
        """A response's Set-Cookie values, for a request to ``url``: kept, applied (a deletion)
        or ignored as RFC 6265 says; never an error."""
        store = self.store
        for value in set_cookies:
            try:
                store.insert(value, url)
            except ValueError:  # refused by §5.2–5.3 (an expired one deleted its namesake)
                continue

    def header(self, url: str) -> str:
        """The Cookie header's value for a request to ``url``; empty when no cookie matches."""
        try:
            cookies = self.store.matches(url)
        except ValueError:  # a URL the store cannot read has no cookies (its request fails)
            return ""
        return "; ".join(cookie.stripped() for cookie in cookies) if cookies else ""
