"""Which sites may call the control API: this server's own pages and clients that are not
browsers, never another site's page, token or not.

A page of any site can make its visitor's browser POST to ``127.0.0.1:9646`` (a form, or a fetch
of ``text/plain``, needs no CORS preflight), and a DNS-rebinding page is even "same-origin": its
name resolves to this machine, so its requests say ``Host: evil.example``. Hence two checks:

- ``Host`` must be a name no outside DNS can point here: an IP address (no DNS at all),
  ``localhost`` or ``*.localhost`` (RFC 6761), a name a bind gives (``--web box:8089``); and where
  the app listens beyond loopback (a manager pod; its API wants the token), names a cluster or a
  LAN gives: one label (``manager``), ``*.svc`` (the operator's ``NAME.NAMESPACE.svc``),
  ``*.local``, ``*.internal``, ``*.home.arpa``, and this machine's own name.
- ``Origin``, which a browser sends with every POST and every cross-origin fetch, must be the
  Host's own (scheme aside: a proxy may add TLS). A request without one — curl, the operator — is
  no browser's page.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
# names public DNS does not give out: a cluster's, a LAN's
PRIVATE_SUFFIXES = (".svc", ".local", ".internal", ".home.arpa")
Authority = tuple[str, int | None]  # (lower-case name or address, port or None)


@dataclass(frozen=True, slots=True)
class Refused:
    """Why a request is not this server's own: the header, its value and what is allowed."""

    field: str
    value: str | None
    allowed: str


def authority(text: str) -> Authority | None:
    """``Box.local:80`` → ``("box.local", 80)``, ``[::1]`` → ``("::1", None)``; None: malformed."""
    if text.startswith("["):
        name, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:] if rest else None
    else:
        name, colon, port_text_found = text.partition(":")
        port_text = port_text_found if colon else None
    if port_text is not None and not (port_text.isascii() and port_text.isdigit()):
        return None
    port = int(port_text) if port_text is not None else None
    name = name.lower().removesuffix(".")
    if not name or (port is not None and port > 65535):
        return None
    return name, port


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _is_localhost(name: str) -> bool:
    return name == "localhost" or name.endswith(".localhost")


@dataclass(frozen=True, slots=True)
class Sites:
    """The Host names this server answers to; ``beyond``: it listens beyond loopback."""

    names: frozenset[str]
    beyond: bool

    @classmethod
    def of(cls, bind_hosts: Iterable[str], beyond: bool) -> Sites:
        """From the hosts the app binds (names among them are allowed as given)."""
        names = {host.lower() for host in bind_hosts if host and not _is_address(host)}
        names -= {name for name in names if _is_localhost(name)}  # allowed anyway
        if beyond:
            names.add(socket.gethostname().lower())
        return cls(frozenset(names), beyond)

    def allows(self, name: str) -> bool:
        if _is_address(name) or _is_localhost(name):
            return True
        if name in self.names:
            return True
        return self.beyond and ("." not in name or name.endswith(PRIVATE_SUFFIXES))

    def allowed(self) -> str:
        """What a refusal says is allowed."""
        known = ", ".join(sorted(self.names))
        given = f", {known}" if known else ""
        if self.beyond:
            return (
                f"reach this server by an IP address, localhost{given}, a one-label name or a "
                f"name ending {', '.join(PRIVATE_SUFFIXES)} (a name another site's DNS can "
                "point here is refused: DNS rebinding)"
            )
        return (
            f"reach this server by an IP address or localhost{given} (it listens on loopback "
            "alone; other names are refused: DNS rebinding)"
        )

    def refusal(self, host: str | None, origin: str | None) -> Refused | None:
        """Why a request with these headers is refused; None when it is this server's own."""
        own = authority(host) if host is not None else None
        if host is not None and (own is None or not self.allows(own[0])):
            return Refused("Host", host, self.allowed())
        if origin is None:  # no browser's page: curl, the operator, a same-origin GET
            return None
        same = "send it from this server's own pages (same-origin) or from no page at all"
        parts = urlsplit(origin) if origin.count("/") == 2 else None
        scheme = parts.scheme.lower() if parts is not None else ""
        theirs = authority(parts.netloc) if parts is not None and parts.netloc else None
        if own is None or theirs is None or scheme not in DEFAULT_PORTS:
            return Refused("Origin", origin, same)
        default = DEFAULT_PORTS[scheme]
        if (own[0], own[1] or default) != (theirs[0], theirs[1] or default):
            return Refused("Origin", origin, same)
        return None
