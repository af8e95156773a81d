"""A counting HTTP target for the tests: a real aiohttp server in its own process.

It counts every request it serves by (method, path, status) so tests can compare Gaggle's totals
with the server's own; a request whose connection it cuts (``/drop``, ``/reset``) counts with
status 0, as Gaggle records a request that got no response. It listens on 127.0.0.1 and, for
cross-origin redirects, on 127.0.0.2 (both loopback). ``GET /__counts`` and ``POST /__reset``
are the tests' side door (not counted).

    python -m tests.support.target --port-file /tmp/port [--tls-cert s.pem --tls-key s.key]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import signal
import socket
import ssl
import struct
from pathlib import Path

from aiohttp import web

ADDRESSES = ("127.0.0.1", "127.0.0.2")
CUT = ("/drop", "/reset")  # paths answered by cutting the connection: no response at all


def build_app() -> web.Application:
    counts: collections.Counter[str] = collections.Counter()
    sessions = itertools.count(1)

    @web.middleware
    async def count(request: web.Request, handler: object) -> web.StreamResponse:
        if request.path.startswith("/__"):
            return await handler(request)  # type: ignore[operator, no-any-return]
        try:
            response: web.StreamResponse = await handler(request)  # type: ignore[operator]
        except web.HTTPException as error:
            counts[f"{request.method} {request.path} {error.status}"] += 1
            raise
        status = 0 if request.path in CUT else response.status
        counts[f"{request.method} {request.path} {status}"] += 1
        return response

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=f"page {request.path}")

    async def login(request: web.Request) -> web.Response:
        await request.post()
        response = web.HTTPFound("/")
        response.set_cookie("session", str(next(sessions)))
        raise response

    async def whoami(request: web.Request) -> web.Response:
        return web.json_response({"session": request.cookies.get("session")})

    async def redirect(request: web.Request) -> web.Response:
        code = int(request.query.get("code", "302"))
        location = request.query.get("to", "/about/")
        return web.Response(status=code, headers={"Location": location})

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    async def echo(request: web.Request) -> web.Response:
        """What arrived, for checking that both clients send the same request."""
        return web.json_response(
            {
                "method": request.method,
                "query": dict(request.query),
                "content_type": request.headers.get("Content-Type", ""),
                "body": (await request.read()).decode(),
                "x_test": request.headers.get("X-Test"),
                "user_agent": request.headers.get("User-Agent", ""),
            }
        )

    async def cut(request: web.Request) -> web.Response:
        """/drop closes the connection (FIN), /reset aborts it (RST), both before answering."""
        transport = request.transport
        if transport is not None:
            if request.path == "/reset":
                sock = transport.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                transport.abort()
            else:
                transport.close()
        return web.Response(text="never sent")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(int(request.query["ms"]) / 1000)
        return web.Response(text="slow")

    async def status(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text="status")

    async def get_counts(request: web.Request) -> web.Response:
        return web.json_response(dict(counts))

    async def reset(request: web.Request) -> web.Response:
        counts.clear()
        return web.json_response({})

    app = web.Application(middlewares=[count])
    for path in ("/", "/about/", "/a", "/b", "/c", "/landing"):
        app.router.add_get(path, page)
    app.router.add_post("/login", login)
    app.router.add_get("/whoami", whoami)
    app.router.add_get("/redirect", redirect)
    app.router.add_post("/redirect", redirect)
    app.router.add_get("/loop", loop)
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/drop", cut)
    app.router.add_get("/reset", cut)
    app.router.add_get("/slow", slow)
    app.router.add_get(r"/status/{code:\d+}", status)
    app.router.add_get("/__counts", get_counts)
    app.router.add_post("/__reset", reset)
    return app


async def serve(
    port_file: str, tls: ssl.SSLContext | None = None, also: tuple[str, ...] = ()
) -> None:
    runner = web.AppRunner(build_app(), access_log=None)
    await runner.setup()
    for attempt in range(20):
        # a free port on 127.0.0.1 may be taken on another address (a connection's local port
        # on the cluster's bridge): then all of them again on another port
        first = web.TCPSite(runner, ADDRESSES[0], 0, backlog=4096, ssl_context=tls)
        await first.start()
        port = int(runner.addresses[0][1])
        sites = [first]
        try:
            for address in (ADDRESSES[1], *also):
                site = web.TCPSite(runner, address, port, backlog=4096, ssl_context=tls)
                await site.start()
                sites.append(site)
            break
        except OSError:
            if attempt == 19:
                raise
            for site in sites:
                await site.stop()
    Path(port_file).write_text(json.dumps({"port": port}))  # noqa: ASYNC240 - once, at start
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate (and --tls-key)")
    parser.add_argument("--tls-key")
    parser.add_argument(
        "--also-bind", action="append", default=[], help="another address to serve on, same port "
        "(e.g. the local cluster's bridge, so pods reach the target)",
    )  # fmt: skip
    args = parser.parse_args()
    context = None
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
    asyncio.run(serve(args.port_file, context, tuple(args.also_bind)))
