"""The load test the CI examples run (github-actions.yml, gitlab-ci.yml): an API read and written,
against go-httpbin as the service under test. Put your own service's paths here.

    gaggle run examples/ci/loadtest.py --host http://localhost:8080 -u 20 -r 10 -t 30s
"""

from gaggle import TaskSet, between, task


class ApiUser(TaskSet):
    wait_time = between(0.1, 0.5)

    @task(weight=4)
    async def read(self) -> None:
        await self.get("/get")

    @task(weight=2)
    async def document(self) -> None:
        await self.get("/json")

    @task
    async def write(self) -> None:
        await self.post("/post", json={"item": self.user_index})
