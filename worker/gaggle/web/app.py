"""The run's one HTTP app: Prometheus ``/metrics`` and ``/summary``, the control API under
``/api/``, and the live page (``/``, ``/live``), on every address it listens on.

It listens where ``--metrics-bind`` says (a manager's default ``0.0.0.0:9646``, so
``kubectl port-forward`` to it reaches the page too) and where ``--web`` says, when that is
another address; both serve the same app. The control API answers without a token only when
every address is loopback: a request cannot tell the app which address it came in on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from gaggle.errors import ConfigError
from gaggle.kits import (
    EVERY_ADDRESS,
    every_address_socket,
    is_loopback,
    join_host_port,
    split_host_port,
)
from gaggle.metrics import Source
from gaggle.web.control_api import Controls, access, add_control_routes
from gaggle.web.live_page import Snapshot, add_live_routes
from gaggle.web.prometheus import add_metrics_routes
from gaggle.web.same_origin import Sites

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Listen:
    bind: str  # HOST:PORT
    option: str = "--metrics-bind"  # what a refusal to listen names


def listens_of(metrics_bind: str, web: str) -> list[Listen]:
    """Where the run's HTTP app listens: --metrics-bind, and --web when it is elsewhere."""
    found = [Listen(metrics_bind)] if metrics_bind else []
    if web and web != metrics_bind:
        found.append(Listen(web, "--web"))
    return found


def parse_bind(text: str) -> tuple[str, int]:
    host, port = split_host_port(text)
    return host or EVERY_ADDRESS, int(port)


async def _listen(runner: web.AppRunner, listen: Listen) -> str:
    """Start one site; returns the address it listens on (the real port for port 0)."""
    host, port = parse_bind(listen.bind)
    if host == EVERY_ADDRESS:
        site: web.BaseSite = web.SockSite(runner, every_address_socket(port))
    else:
        site = web.TCPSite(runner, host, port)
    before = len(runner.addresses)
    try:
        await site.start()
    except OSError as error:
        reason = error.strerror or str(error)
        raise ConfigError(listen.option, listen.bind, f"cannot listen there ({reason})") from None
    added = runner.addresses[before:]
    actual = int(added[0][1]) if added else port
    return join_host_port(host, actual)


async def serve(
    listens: str | Sequence[Listen],
    source: Source,
    controls: Controls | None = None,
    token: str = "",
    live: Snapshot | None = None,
) -> tuple[web.AppRunner, list[int]]:
    """Serve the app (the control API with ``controls``, the live page with ``live``); returns
    the runner (to clean up) and each address's port, in order."""
    listens = [Listen(listens)] if isinstance(listens, str) else list(listens)
    hosts = [parse_bind(listen.bind)[0] for listen in listens]
    loopback = all(is_loopback(host) for host in hosts)
    allowed = access(token, loopback) if controls is not None else "off"
    app = web.Application()
    add_metrics_routes(app, source)
    if controls is not None:
        add_control_routes(app, controls, token, loopback, Sites.of(hosts, beyond=not loopback))
    if live is not None:
        add_live_routes(app, live, allowed)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    addresses = []
    try:
        for listen in listens:
            addresses.append(await _listen(runner, listen))
    except ConfigError:
        await runner.cleanup()
        raise
    for address in addresses:
        _say_where(address, controls is not None, allowed, live is not None)
    return runner, [int(split_host_port(address)[1]) for address in addresses]


def _say_where(address: str, controls: bool, allowed: str, live: bool) -> None:
    log.warning("metrics on http://%s/metrics and /summary", address)
    if live:
        log.warning("live page on http://%s/", address)
    if not controls:
        return
    if allowed == "off":
        log.warning("control API off: %s binds beyond loopback and no token is set", address)
    else:
        guard = "a bearer token" if allowed == "token" else "loopback callers"
        log.warning("control API on http://%s/api/ (for %s)", address, guard)
