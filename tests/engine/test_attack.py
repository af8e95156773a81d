"""The programmatic entry (the seed's GooseAttack): defaults, overrides, schedulers, scale."""

from __future__ import annotations

import io
import random

import pytest
from rich.console import Console

from gaggle import Attack, ConfigError, Default, TaskSet, between, constant, task
from gaggle.errors import TestDefinitionError
from gaggle.users.user import TaskPlan
from tests.conftest import Target
from tests.support.allocation import allocate


class Front(TaskSet):
    weight = 2
    wait_time = constant(0.05)

    @task
    async def index(self) -> None:
        await self.get("/a")


class Back(TaskSet):
    wait_time = constant(0.05)

    @task
    async def index(self) -> None:
        await self.get("/b")


def test_command_line_overrides_set_default(
    target: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    attack = (
        Attack(Front, Back)
        .set_default(Default.HOST, "http://127.0.0.1:9")
        .set_default(Default.USERS, 50)
        .set_default(Default.RUN_TIME, "10m")
    )
    result = attack.execute(
        ["--host", target.url, "-u", "3", "-r", "100", "-t", "1", "--only-summary"]
    )
    assert result.users == 3
    counts = target.counts()
    assert counts["GET /a 200"] > 0
    assert counts["GET /b 200"] > 0
    assert "PER REQUEST METRICS" in capsys.readouterr().out


def test_set_default_checks_the_value_at_once() -> None:
    with pytest.raises(ConfigError, match=r"--users: -1 is not allowed"):
        Attack(Front).set_default(Default.USERS, -1)
    with pytest.raises(ConfigError, match=r"--run-time: 'soon'"):
        Attack(Front).set_default(Default.RUN_TIME, "soon")


def test_execute_exits_2_on_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        Attack(Front).execute(["-u", "1"])
    assert exit_info.value.code == 2
    assert "no host defined for Front" in capsys.readouterr().err


def test_a_task_must_be_async() -> None:
    with pytest.raises(TestDefinitionError, match="must be an async function"):

        class Broken(TaskSet):
            @task
            def index(self) -> None:  # type: ignore[type-var]
                pass


@pytest.mark.parametrize(
    ("scheduler", "expected"),
    [
        ("round-robin", [0, 1, 0, 0, 1, 0, 0, 1]),
        ("serial", [0, 0, 1, 0, 0, 1, 0, 0]),
    ],
)
def test_schedulers_allocate_task_sets_as_the_seed_does(
    scheduler: str, expected: list[int]
) -> None:
    assert allocate(8, [4, 2], scheduler) == expected  # weights reduced by their gcd to 2:1


def test_random_scheduler_keeps_the_weights_per_cycle() -> None:
    allocation = allocate(300, [2, 1], "random", random.Random(1))
    assert allocation.count(0) == 200
    assert allocation != allocate(300, [2, 1], "round-robin")


def test_task_plan_orders_sequences_and_keeps_weights() -> None:
    class Mixed(TaskSet):
        @task(weight=3)
        async def free(self) -> None: ...

        @task(sequence=2)
        async def two(self) -> None: ...

        @task(sequence=1, weight=2)
        async def one(self) -> None: ...

        @task(on_start=True)
        async def hello(self) -> None: ...

    plan = TaskPlan(Mixed)
    names = [spec.name for _, spec in plan.cycle()]
    assert names == ["one", "one", "two", "free", "free", "free"]
    assert [spec.name for _, spec in plan.on_start] == ["hello"]


def test_thousand_users_in_the_seeds_shape(target: Target) -> None:
    """A scaled-down `-u1024 -r32 -t10m`: 1,024 users log in once, then pause 5..15 s.

    The run time (3 s) counts from the first user (--no-reset-metrics) and hatching takes 2 s.
    """

    class Website(TaskSet):
        wait_time = between(5, 15)

        @task(on_start=True)
        async def login(self) -> None:
            await self.post("/login", data={"username": "test_user", "password": ""})

        @task
        async def index(self) -> None:
            await self.get("/")

    console = Console(file=io.StringIO(), width=140)
    result = Attack(Website).run(
        console=console, host=target.url, users=1024, hatch_rate=512, run_time=3,
        no_reset_metrics=True,
    )  # fmt: skip
    assert result.users == 1024
    assert target.counts()["POST /login 302"] == 1024
    assert result.metrics.requests[("POST", "/login")].count == 1024
    assert result.metrics.requests[("POST", "/login")].fail_count == 0


def test_execute_points_gaggle_flags_to_gaggle_run(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        Attack(Front).execute(["--worker"])
    assert exit_info.value.code == 2
    assert "--worker: True is not allowed; Gaggle mode runs with `gaggle run FILE`" in (
        capsys.readouterr().err
    )


def test_register_taskset_and_set_scheduler_build_the_attack_as_the_seed_does(
    target: Target,
) -> None:
    """GooseAttack's builder calls: ``register_taskset`` adds a task set after construction,
    ``set_scheduler`` is ``set_default(Default.SCHEDULER, …)``, checked at once."""
    attack = Attack(Front).register_taskset(Back).set_scheduler("serial")
    plan = attack.plan({"host": target.url, "users": 3})
    assert [ts.__name__ for ts in plan.tasksets] == ["Front", "Back"]
    assert plan.config.scheduler == "serial"
    # serial: the first task set's weight (2) in users, then the next one's
    assert allocate(3, [2, 1], plan.config.scheduler, random.Random(0)) == [0, 0, 1]
    with pytest.raises(ConfigError, match=r"--scheduler: 'sideways' is not allowed"):
        Attack(Front).set_scheduler("sideways")
