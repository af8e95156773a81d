"""A load test of a small shop, as a real one reads: `make demo` runs it against the demo site.

    gaggle demo-site --port 8080 &
    gaggle run examples/shop.py --host http://127.0.0.1:8080 -u 50 -r 25 -t 1m -R report.html

Three in four users are shoppers: each signs in with the one-time token the sign-in page holds,
pages through the catalogue's JSON API, adds products to its own cart and checks out now and
then (slow: the payment provider). The others are visitors who read the home page with its
stylesheet and the recommendations (which fail now and then). A cart call can answer 200 and
still not add the product (sold out meanwhile); the body says so, and the test counts it as
failed.
"""

from __future__ import annotations

import random
import re

from gaggle import Response, TaskSet, between, task

CSRF_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
PRODUCTS = 200
PAGE_SIZE = 20


class Shopper(TaskSet):
    weight = 3
    wait_time = between(0.1, 0.5)

    def __init__(self) -> None:
        # Per-user state: one instance per simulated user.
        self.username = f"shopper-{self.user_index}"
        self.seen: list[int] = []  # product ids this user has listed
        self.in_cart = 0

    @task(on_start=True)
    async def sign_in(self) -> None:
        form = await self.get("/sign-in")
        found = CSRF_TOKEN.search(form.text)
        if found is None:
            self.set_failure("sign-in page has no csrf_token", form)
            return
        signed_in = await self.post(
            "/sign-in",
            data={"username": self.username, "password": "demo", "csrf_token": found[1]},
        )  # a 303 to /account, followed
        if f"Signed in as {self.username}" not in signed_in.text:
            self.set_failure("sign-in did not sign in", signed_in)

    @task(weight=4)
    async def list_products(self) -> None:
        page = random.randint(1, PRODUCTS // PAGE_SIZE)
        listing = await self.get("/api/products", params={"page": str(page)})
        if listing.ok:
            self.seen = [item["id"] for item in listing.json()["products"]]

    @task(weight=3)
    async def view_product(self) -> None:
        product_id = random.choice(self.seen) if self.seen else random.randint(1, PRODUCTS)
        await self.get(f"/api/products/{product_id}", name="/api/products/{id}")

    @task(weight=2)
    async def add_to_cart(self) -> None:
        product_id = random.choice(self.seen) if self.seen else random.randint(1, PRODUCTS)
        added = await self.post("/api/cart", json={"product": product_id, "quantity": 1})
        if added.ok and not added.json().get("added"):
            self.set_failure(f"cart: {_reason(added)}", added)  # a 200 that added nothing
        elif added.ok:
            self.in_cart += 1

    @task
    async def checkout(self) -> None:
        if self.in_cart:
            await self.post("/api/checkout", json={"pay_with": "demo-card"})
            self.in_cart = 0


class Visitor(TaskSet):
    weight = 1
    wait_time = between(0.1, 0.5)

    @task(weight=3)
    async def home(self) -> None:
        await self.get("/")
        await self.get("/static/app.css")

    @task(weight=2)
    async def recommendations(self) -> None:
        await self.get("/api/recommendations")

    @task
    async def about(self) -> None:
        await self.get("/about/")


def _reason(response: Response) -> str:
    reason = response.json().get("reason", "not added")
    return str(reason)
