"""Goose's simple example (``examples/simple.rs``), written for Gaggle; each line says what it was.

    python examples/goose_style.py --host http://127.0.0.1:8080 -u 8 -r 2 -t 1m
    #   cargo run --example simple -- --host http://127.0.0.1:8080 -u 8 -r 2 -t 1m

It is a program with its own defaults (GooseAttack's ``set_default``), so the command line
overrides them. README's "Coming from Goose" maps every flag.
"""

from __future__ import annotations

from gaggle import Attack, Default, TaskSet, between, task


class WebsiteUser(TaskSet):  # taskset!("WebsiteUser"); a scenario since Goose 0.17
    # .set_wait_time(5, 15) in Goose's example; short here so the example ends in a moment
    wait_time = between(0.01, 0.05)

    @task(on_start=True)  # task!(website_login).set_on_start()
    async def website_login(self) -> None:
        await self.post("/login", data={"username": "test_user", "password": ""})

    @task(weight=2, name="front page")  # task!(website_index).set_weight(2)?.set_name(...)
    async def website_index(self) -> None:
        response = await self.get("/")  # user.get("/").await?
        if not response.text.startswith("page"):
            # user.set_failure("front page: ...", &mut goose.request, headers, body)?
            self.set_failure("front page: unexpected body", response)

    @task  # task!(website_about)
    async def website_about(self) -> None:
        await self.get("/about/")

    @task(on_stop=True)  # task!(website_logout).set_on_stop()
    async def website_logout(self) -> None:
        await self.get("/c", name="logout")


if __name__ == "__main__":
    (
        Attack()  # GooseAttack::initialize()?
        .register_taskset(WebsiteUser)  # .register_taskset(taskset!(...))
        .set_default(Default.USERS, 8)  # .set_default(GooseDefault::Users, 8)?
        .set_default(Default.HATCH_RATE, 2)  # .set_default(GooseDefault::HatchRate, 2)?
        .set_default(Default.STATUS_CODES, True)  # .set_default(GooseDefault::StatusCodes, true)?
        .execute()  # .execute()?.print();
    )
