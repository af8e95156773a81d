"""The jar and the redirect walk alone, on what the servers of test_hostile_servers.py send:
``cookies.CookieJar`` takes any Set-Cookie line without raising, and ``redirects.next_hop``
names what is wrong with a Location it cannot go on to (the review's D1 and D5)."""

from __future__ import annotations

import pytest

from gaggle.http.cookies import CookieJar
from gaggle.http.redirects import BadLocation, Hop, next_hop
from tests.http.test_hostile_servers import BAD_LOCATIONS, PAST


def test_the_jar_takes_any_line_without_raising_and_keeps_only_what_it_should() -> None:
    jar = CookieJar()
    hostile = [
        *("", "=", ";", "novalue", "=v", "a=1; Max-Age=0", f"a=1; Expires={PAST}"),
        *("a=1; Domain=.example.com", "a=1; Domain=[::1", "a=\udcff", "kept=1; Path=/"),
    ]
    jar.receive(hostile, "http://127.0.0.1:1/page")
    assert jar.header("http://127.0.0.1:1/") == "kept=1"
    jar.receive(["a=1"], "http://[::1/")  # a URL the store cannot read: nothing kept
    for url in ("http://[::1/", "not a url", "http://exa mple.com/"):
        assert jar.header(url) == ""


def test_next_hop_names_what_is_wrong_with_a_location() -> None:
    url = "http://127.0.0.1:1/moved"
    for location, error in BAD_LOCATIONS.values():
        with pytest.raises(BadLocation, match=f"^{error}$"):
            next_hop("GET", url, 302, location)
    hop = next_hop("POST", url, 302, "http:///x")  # the base's host (urljoin, as before)
    assert hop == Hop("GET", "http://127.0.0.1:1/x", keep_body=False)
