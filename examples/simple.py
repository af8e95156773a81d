"""The seed's simple example: log in once, then load the front page and the about page.

gaggle run examples/simple.py --host http://127.0.0.1:8080 -u 50 -r 10 -t 1m
"""

from gaggle import TaskSet, between, task


class WebsiteUser(TaskSet):
    wait_time = between(5, 15)

    @task(on_start=True)
    async def login(self) -> None:
        await self.post("/login", data={"username": "test_user", "password": ""})

    @task
    async def index(self) -> None:
        await self.get("/")

    @task
    async def about(self) -> None:
        await self.get("/about/")
