"""An open model: iterations start at a rate, whatever the target's speed (k6's arrival rates).

gaggle run examples/open_model.py --host http://127.0.0.1:8080 --arrival-rate 50 -t 1m

(50 iterations a second for a minute; each takes a free user of the pool, which runs one pass of
its cycle: here the index page, then the about page). A plan of rates ramps between them:

gaggle run examples/open_model.py --host http://127.0.0.1:8080 \
    --test-plan "50/s,30s;200/s,1m;0/s,10s" --max-users 500

The tables end with a SCHEDULE line — arrivals scheduled, started and dropped (no free user:
--max-users reached), and how late they started — and the response times of each iteration's
first request count from when the arrival was due, so a stalled target shows its stall.
"""

from gaggle import Attack, TaskSet, task


class Visitor(TaskSet):
    # no wait_time: the arrival rate paces the iterations; a pause would only hold a user longer

    @task(on_start=True)
    async def login(self) -> None:  # once per pooled user, when the pool grows
        await self.post("/login", data={"username": "test_user", "password": ""})

    @task(sequence=1)
    async def index(self) -> None:
        await self.get("/")

    @task(sequence=2)
    async def about(self) -> None:
        await self.get("/about/")


if __name__ == "__main__":
    Attack(Visitor).execute()
