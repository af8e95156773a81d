"""Locust's quick-start locustfile, written for Gaggle; each line says what it was in Locust.

    gaggle run examples/locust_style.py --host http://127.0.0.1:8080 -u 10 -r 2 -t 1m
    #   locust -f locustfile.py --headless -H http://127.0.0.1:8080 -u 10 -r 2 -t 1m

README's "Coming from Locust" maps the rest (flags, LoadTestShape, master/worker).
"""

from __future__ import annotations

from gaggle import TaskSet, between, task


class QuickstartUser(TaskSet):  # class QuickstartUser(HttpUser):
    # between(1, 5) in Locust's quick start; short here so the example ends in a moment
    wait_time = between(0.01, 0.05)

    @task(on_start=True)  # def on_start(self):
    async def login(self) -> None:
        await self.post("/login", json={"username": "foo", "password": "bar"})

    @task  # @task
    async def hello_world(self) -> None:
        await self.get("/a")  # self.client.get("/hello")
        await self.get("/b")  # self.client.get("/world")

    @task(weight=3)  # @task(3)
    async def view_items(self) -> None:
        for item_id in range(3):
            # self.client.get(f"/item?id={item_id}", name="/item")
            await self.get("/echo", params={"id": str(item_id)}, name="/item")

    @task
    async def signed_in(self) -> None:
        # with self.client.get("/whoami", catch_response=True) as response:
        response = await self.get("/whoami")
        if response.json().get("session") is None:
            self.set_failure("not signed in", response)  # response.failure("not signed in")

    @task
    async def expected_missing_page(self) -> None:
        # with self.client.get("/status/404", catch_response=True) as response:
        response = await self.get("/status/404", name="missing page")
        if response.status == 404:
            self.set_success(response)  # response.success()
