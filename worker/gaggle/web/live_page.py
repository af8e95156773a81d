"""The live web page: the HTML report of the run so far, redrawn each second, with controls.

It is the report's own page (``html.render_html``) in live mode: the same charts and tables,
which its script (``assets/live.js``) refreshes from ``/live/report`` (the report's data model,
as ``-R report.json`` will write it) and ``/live/sections`` (the tables, rendered here as the
file renders them). Those are read-only, like ``/metrics``: anyone who can connect may watch.
Changing the run goes through the control API (``/api/…``), whose guard decides; the page shows
its controls only when the API would take them (``control_api.access``), and asks for the token
once when one is needed.

The page's Content-Security-Policy allows fetches from its own server and nowhere else.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from gaggle.report import (
    LiveParts,
    asset,
    plain,
    render_html,
    summary_section,
    tables_section,
)

Snapshot = Callable[[], dict[str, Any]]  # the report's data as of now
REFRESH_MS = 1000
PAGE_PATHS = ("/", "/live")

CONTROLS = """<section id="controls" class="live-controls" hidden>
<div id="control-token" hidden><label>Control token <input id="control-token-value"
 type="password" autocomplete="off"></label> <button id="control-token-use">Use</button>
 <span class="note">this run's control API needs its bearer token (kept in this tab only)</span>
</div>
<div id="control-panel" hidden>
<span id="control-closed"><label>Users <input id="control-users" type="number" min="0"
 step="1"></label>
<label>at <input id="control-hatch-rate" type="number" min="0" step="any"> /s</label>
<button id="control-users-set">Set users</button></span>
<span id="control-arrival" hidden><label>Arrival rate <input id="control-arrival-rate"
 type="number" min="0" step="any"> /s</label>
<button id="control-arrival-set">Set rate</button></span>
<label>Run time left <input id="control-remaining" type="text" placeholder="5m" size="6"></label>
<button id="control-remaining-set">Set run time</button>
<button id="control-stop" class="stop">Stop the run</button>
</div>
<p id="control-state" class="note"></p>
<p id="control-message" class="note"></p>
</section>
<p id="live-state" class="note">Live: refreshed every second.</p>"""


def live_parts(access: str) -> LiveParts:
    """``access``: who may use the control API (``control_api.access``: open, token or off)."""
    return LiveParts(
        controls=CONTROLS,
        script=asset("live.js"),
        settings={
            "report": "/live/report",
            "sections": "/live/sections",
            "status": "/api/status",
            "refresh_ms": REFRESH_MS,
            "control": access,
        },
    )


def add_live_routes(app: web.Application, snapshot: Snapshot, access: str) -> None:
    """The page at ``/`` and ``/live``, and what it refreshes from."""
    parts = live_parts(access)

    async def page(request: web.Request) -> web.Response:
        return web.Response(
            text=render_html(snapshot(), parts),
            content_type="text/html",
            headers={"Cache-Control": "no-store"},
        )

    async def report(request: web.Request) -> web.Response:
        text = json.dumps(snapshot(), default=plain)  # the request rows made as written
        return web.json_response(text=text, headers={"Cache-Control": "no-store"})

    async def sections(request: web.Request) -> web.Response:
        data = snapshot()
        body = {"summary": summary_section(data, live=True), "tables": tables_section(data)}
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    for path in PAGE_PATHS:
        app.router.add_get(path, page)
    app.router.add_get("/live/report", report)
    app.router.add_get("/live/sections", sections)
