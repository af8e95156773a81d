"""``gaggle demo-site``: a small shop on 127.0.0.1 to try Gaggle on, with nothing else to set up.

What a real site has, so a load test against it looks like one (``examples/shop.py``):

- ``GET /sign-in``: a form with a one-time ``csrf_token`` in the page; ``POST /sign-in`` with
  ``username``, ``password`` and that token sets a session cookie and redirects to ``/account``
  (a missing or reused token: 403); ``GET /account`` says ``Signed in as NAME`` (or shows the form);
- ``GET /api/products?page=N`` and ``GET /api/products/ID``: JSON, a few to ~60 ms, varying;
- ``POST /api/cart`` (signed in, JSON ``{"product": ID, "quantity": N}``): every 8th addition
  answers 200 with ``"added": false`` (sold out meanwhile) — a body check's job, not the status's;
- ``POST /api/checkout`` (signed in): slow, 300–700 ms (the payment provider);
- ``GET /api/recommendations``: every 6th request fails with 503 (an overloaded upstream);
- ``GET /static/app.css``: a static asset with ``ETag`` and ``Cache-Control``.

And the seed's pages: ``/`` and ``/about/``; ``POST /login`` sets a session cookie and redirects
to ``/``; ``/slow?ms=N`` answers after N ms (at most 10 s); ``/status/CODE`` answers with it.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import hashlib
import itertools
import random
import secrets
import signal
from pathlib import Path
from typing import Any

from aiohttp import web

PAGE = (
    "<!doctype html><html><head><title>{title}</title>"
    '<link rel="stylesheet" href="/static/app.css"></head>'
    "<body><h1>{title}</h1>{body}</body></html>"
)
SIGN_IN_FORM = (
    '<form method="post" action="/sign-in">'
    '<input type="hidden" name="csrf_token" value="{token}">'
    '<input name="username"> <input name="password" type="password">'
    "<button>Sign in</button></form>"
)
JSON = "application/json"
PRODUCTS = 200
PAGE_SIZE = 20
SOLD_OUT_EVERY = 8  # every 8th cart addition finds the product sold out
FAIL_EVERY = 6  # every 6th recommendations request fails
MAX_OPEN_TOKENS = 100_000  # issued but unused sign-in tokens kept; the oldest go first
STYLESHEET = "body { font-family: sans-serif; margin: 2rem; }\n" + "".join(
    f".product-{i} {{ color: #{i * 40503 % 0xFFFFFF:06x}; }}\n" for i in range(PRODUCTS)
)
STYLESHEET_ETAG = '"' + hashlib.sha256(STYLESHEET.encode()).hexdigest()[:16] + '"'


def product(product_id: int) -> dict[str, Any]:
    return {
        "id": product_id,
        "name": f"Product {product_id}",
        "price": round(5 + product_id * 1.37 % 95, 2),
        "stock": product_id * 7 % 23 + 1,
    }


async def think(low_ms: float, high_ms: float) -> None:
    """A handler's work: a random time in the range, longer now and then (a cache miss)."""
    delay = random.uniform(low_ms, high_ms)
    if random.random() < 0.05:
        delay *= 3
    await asyncio.sleep(delay / 1000)


class Shop:
    """The shop's state: sign-in tokens not yet used, sessions and their carts, a request count."""

    def __init__(self) -> None:
        self.open_tokens: collections.OrderedDict[str, None] = collections.OrderedDict()
        self.sessions: dict[str, str] = {}  # session id -> user name
        self.carts: collections.defaultdict[str, list[int]] = collections.defaultdict(list)
        self.cart_additions = itertools.count(1)
        self.recommendation_requests = itertools.count(1)
        self.orders = itertools.count(1)

    def issue_token(self) -> str:
        token = secrets.token_urlsafe(16)
        self.open_tokens[token] = None
        while len(self.open_tokens) > MAX_OPEN_TOKENS:
            self.open_tokens.popitem(last=False)
        return token

    def use_token(self, token: str) -> bool:
        return self.open_tokens.pop(token, "missing") is None

    def session_of(self, request: web.Request) -> str | None:
        session = request.cookies.get("shop_session", "")
        return session if session in self.sessions else None

    def signed_in(self, request: web.Request) -> str:
        """The caller's session id, or 401 (JSON) when not signed in."""
        session = self.session_of(request)
        if session is None:
            raise web.HTTPUnauthorized(text='{"error": "sign in first"}', content_type=JSON)
        return session

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/sign-in", self.sign_in_form)
        router.add_post("/sign-in", self.sign_in)
        router.add_get("/account", self.account)
        router.add_get("/api/products", self.products)
        router.add_get(r"/api/products/{id:\d+}", self.product)
        router.add_post("/api/cart", self.add_to_cart)
        router.add_post("/api/checkout", self.checkout)
        router.add_get("/api/recommendations", self.recommendations)
        router.add_get("/static/app.css", self.stylesheet)

    async def sign_in_form(self, request: web.Request) -> web.Response:
        return _page("Sign in", SIGN_IN_FORM.format(token=self.issue_token()))

    async def sign_in(self, request: web.Request) -> web.Response:
        form = await request.post()
        if not self.use_token(str(form.get("csrf_token", ""))):
            raise web.HTTPForbidden(text="missing or used csrf_token: load /sign-in first")
        await think(5, 15)  # checking a password hash takes a moment
        session = secrets.token_urlsafe(16)
        self.sessions[session] = str(form.get("username", "user"))
        response = web.HTTPSeeOther("/account")
        response.set_cookie("shop_session", session, httponly=True)
        raise response

    async def account(self, request: web.Request) -> web.Response:
        session = self.session_of(request)
        if session is None:  # 200 with the form, as sites do: only the body tells
            return _page("Sign in", SIGN_IN_FORM.format(token=self.issue_token()))
        return _page("Account", f"<p>Signed in as {self.sessions[session]}.</p>")

    async def products(self, request: web.Request) -> web.Response:
        try:
            page = max(1, int(request.query.get("page", "1")))
        except ValueError:
            raise web.HTTPBadRequest(text="page must be a whole number") from None
        await think(2, 20)
        first = (page - 1) * PAGE_SIZE + 1
        ids = range(first, min(first + PAGE_SIZE, PRODUCTS + 1))
        return web.json_response({"page": page, "products": [product(i) for i in ids]})

    async def product(self, request: web.Request) -> web.Response:
        product_id = int(request.match_info["id"])
        if not 1 <= product_id <= PRODUCTS:
            raise web.HTTPNotFound(text='{"error": "no such product"}', content_type=JSON)
        await think(5, 40 + product_id % 20)
        return web.json_response(product(product_id))

    async def add_to_cart(self, request: web.Request) -> web.Response:
        session = self.signed_in(request)
        try:
            item = await request.json()
            product_id, quantity = int(item["product"]), int(item.get("quantity", 1))
        except (ValueError, KeyError, TypeError, AttributeError):
            error = '{"error": "send {\\"product\\": ID, \\"quantity\\": N}"}'
            raise web.HTTPBadRequest(text=error, content_type=JSON) from None
        if not 1 <= product_id <= PRODUCTS:
            raise web.HTTPNotFound(text='{"error": "no such product"}', content_type=JSON)
        await think(3, 12)
        if next(self.cart_additions) % SOLD_OUT_EVERY == 0:
            return web.json_response({"added": False, "reason": "sold out"})
        self.carts[session].extend([product_id] * max(1, quantity))
        return web.json_response({"added": True, "items": len(self.carts[session])})

    async def checkout(self, request: web.Request) -> web.Response:
        session = self.signed_in(request)
        cart = self.carts.pop(session, [])
        if not cart:
            raise web.HTTPConflict(text='{"error": "the cart is empty"}', content_type=JSON)
        await think(300, 700)
        total = round(sum(product(i)["price"] for i in cart), 2)
        return web.json_response({"order": next(self.orders), "items": len(cart), "total": total})

    async def recommendations(self, request: web.Request) -> web.Response:
        if next(self.recommendation_requests) % FAIL_EVERY == 0:
            await think(20, 60)  # it waited for the upstream, then gave up
            raise web.HTTPServiceUnavailable(text="recommendations upstream timed out")
        await think(10, 30)
        picks = random.sample(range(1, PRODUCTS + 1), 4)
        return web.json_response({"products": [product(i) for i in picks]})

    async def stylesheet(self, request: web.Request) -> web.Response:
        headers = {"ETag": STYLESHEET_ETAG, "Cache-Control": "public, max-age=3600"}
        if request.headers.get("If-None-Match") == STYLESHEET_ETAG:
            return web.Response(status=304, headers=headers)
        return web.Response(text=STYLESHEET, content_type="text/css", headers=headers)


def build_app() -> web.Application:
    sessions = itertools.count(1)

    async def index(request: web.Request) -> web.Response:
        who = request.cookies.get("session", "anonymous")
        links = "<a href='/about/'>About</a> <a href='/sign-in'>Sign in</a>"
        return _page("Gaggle demo", f"<p>Hello, {who}.</p>{links}")

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
    Shop().add_routes(app.router)
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


def serve_demo_site(namespace: argparse.Namespace) -> int:
    asyncio.run(serve(namespace.bind, namespace.port, namespace.port_file))
    return 0
