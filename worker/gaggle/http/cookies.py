"""The cookie jar of a client that brings none: pyreqwest's RFC 6265 store (Rust's cookie_store
crate), shared by httptools.

Why borrow it: a jar's rules (domain and path matching, expiry, Secure, HttpOnly, host-only
cookies) are where a hand-written jar goes wrong, and it is the store reqwest's client keeps its
own cookies in, so two of the clients keep cookies alike. Named here, as the seam's one cookie
dependency, rather than imported inside a client: replacing it is a change to this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pyreqwest.cookie import CookieStore


class StoredCookie(Protocol):
    def stripped(self) -> str:
        """``name=value``, as a Cookie header carries it."""
        ...


class CookieJar(Protocol):
    """What a client needs of a jar: a response's Set-Cookie in, a request's cookies out."""

    def insert(self, set_cookie: str, request_url: str, /) -> None: ...

    def matches(self, url: str, /) -> Sequence[StoredCookie]: ...


def new_cookie_jar() -> CookieJar:
    """An empty jar; a user's client makes one on the first Set-Cookie it sees."""
    return CookieStore()


def cookie_header(jar: CookieJar, url: str) -> str:
    """The Cookie header's value for a request to ``url``; empty when no cookie matches."""
    cookies = jar.matches(url)
    return "; ".join(cookie.stripped() for cookie in cookies) if cookies else ""
