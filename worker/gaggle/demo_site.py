"""``gaggle demo-site``: a small site on 127.0.0.1 to try Gaggle on, with nothing else to set up.

Pages: ``/`` and ``/about/``; ``POST /login`` sets a session cookie and redirects to ``/``;
``/slow?ms=N`` answers after N ms (at most 10 s); ``/status/CODE`` answers with that status.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import signal
from pathlib import Path
from typing import Any

from aiohttp import web

PAGE = (
    "<!doctype html><html><head><title>{title}</title></head>"
    "<body><h1>{title}</h1>{body}</body></html>"
)


def build_app() -> web.Application:
    sessions = itertools.count(1)

    async def index(request: web.Request) -> web.Response:
        who = request.cookies.get("session", "anonymous")
        return _page("Gaggle demo", f"<p>Hello, {who}.</p><a href='/about/'>About</a>")

    async def about(request: web.Request) -> web.Response:
        return _page("About", "<p>A demo target for Gaggle load tests.</p>")

    async def login(request: web.Request) -> web.Response:
        form = await request.post()
        response = web.HTTPFound("/")
        response.set_cookie("session", f"{form.get('username', 'user')}-{next(sessions)}")
        raise response

    async def slow(request: web.Request) -> web.Response:
        try:
            delay_ms = min(10_000, max(0, int(request.query.get("ms", "100"))))
        except ValueError:
            raise web.HTTPBadRequest(text="ms must be a whole number of milliseconds") from None
        await asyncio.sleep(delay_ms / 1000)
        return _page("Slow", f"<p>Answered after {delay_ms} ms.</p>")

    async def status(request: web.Request) -> web.Response:
        code = int(request.match_info["code"])
        if not 200 <= code <= 599:
            raise web.HTTPBadRequest(text="code must be 200..599")
        return web.Response(status=code, text=f"status {code}")

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/about/", about)
    app.router.add_post("/login", login)
    app.router.add_get("/slow", slow)
    app.router.add_get(r"/status/{code:\d+}", status)
    return app


def _page(title: str, body: str) -> web.Response:
    return web.Response(text=PAGE.format(title=title, body=body), content_type="text/html")


async def serve(bind: str, port: int, port_file: str | None) -> None:
    runner = web.AppRunner(build_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, bind, port)
    await site.start()
    actual = int(runner.addresses[0][1]) if runner.addresses else port
    if port_file:
        await asyncio.to_thread(Path(port_file).write_text, str(actual))
    print(f"demo site listening on http://{bind}:{actual} (Ctrl-C to stop)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def demo_site_command(namespace: argparse.Namespace) -> int:
    asyncio.run(serve(namespace.bind, namespace.port, namespace.port_file))
    return 0


def add_demo_site_parser(commands: Any) -> None:
    parser = commands.add_parser("demo-site", help="serve a small demo target site")
    parser.add_argument("--bind", default="127.0.0.1", help="address (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port; 0 picks a free one")
    parser.add_argument("--port-file", help="write the port here once listening")
    parser.set_defaults(func=demo_site_command)
