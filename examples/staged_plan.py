"""A staged plan: ramp up, hold, spike, come back down — the users a plan says, over time.

gaggle run examples/staged_plan.py --host http://127.0.0.1:8080 \
    --test-plan "20,30s;20,1m;60,10s;60,30s;0,20s"

(ramp to 20 users over 30 s, hold them 1 min, spike to 60 in 10 s, hold 30 s, stop all over
20 s; the run ends with the plan). The plan can also be the program's default, which a
command-line -u or --test-plan overrides: ``python examples/staged_plan.py --host ...``.
"""

from gaggle import Attack, Default, TaskSet, between, task


class WebsiteUser(TaskSet):
    wait_time = between(1, 3)

    @task(on_start=True)
    async def login(self) -> None:
        await self.post("/login", data={"username": "test_user", "password": ""})

    @task(weight=3)
    async def index(self) -> None:
        await self.get("/")

    @task
    async def about(self) -> None:
        await self.get("/about/")

    @task(on_stop=True)
    async def logout(self) -> None:
        await self.get("/logout")


if __name__ == "__main__":
    Attack(WebsiteUser).set_default(Default.TEST_PLAN, "20,30s;20,1m;60,10s;60,30s;0,20s").execute()
