"""Every number a user types is finite and bounded (review D2, D15): what one process holds, and
what a whole run may hold, are constants of ``options.converters``; a value beyond them is one
line and exit 2 on the command line, a ConfigError from ``set_default``. A gaggle holds one
process's bound for each of its workers. (The control API's refusals are in
tests/load/test_control_api.py, the LoadTest's in tests/operator/test_spec.py.)"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from gaggle import Attack, Default, TaskSet, task
from gaggle.errors import ConfigError
from gaggle.options.argv import parse_run_args, split_gaggle_options
from gaggle.options.config import build_config
from gaggle.options.conflicts import role_from, share_refused
from gaggle.options.converters import (
    ARRIVALS_PER_PROCESS,
    ARRIVALS_PER_RUN,
    SECONDS_MAX,
    USERS_PER_PROCESS,
    USERS_PER_RUN,
)
from tests.conftest import run_gaggle, write_test
from tests.engine.test_cli import PLAIN

HOST = "http://127.0.0.1:9"  # nothing is sent: the plans are refused or only built

HOLD = "one process (starting a user takes the loop"  # why a process holds 25,000 users
ARRIVE = "in one process (one loop starts"  # why it starts 100,000 arrivals a second

# (the flags, words the one line must hold: the option, the value as typed, what is allowed)
TOO_MUCH = [
    (["-u", "1000000", "-r", "1000000"], ["--users", "'1000000'", "at most 25,000 users", HOLD]),
    (["-u", "30000"], ["--users", "'30000'", "at most 25,000 users", HOLD]),
    (["-u", "10000000"], ["--users", "'10000000'", "≤ 1,000,000 (a gaggle's manager"]),
    (["-r", "1e308"], ["--hatch-rate", "'1e308'", "≤ 1,000,000 (every user"]),
    (["--arrival-rate", "1e9"], ["--arrival-rate", "'1e9'", "≤ 100,000,000 (100,000 a second"]),
    (["--arrival-rate", "200000"], ["--arrival-rate", "'200000'", "at most 100,000", ARRIVE]),
    (["--arrival-rate", "1e308"], ["--arrival-rate", "'1e308'", "≤ 100,000,000"]),
    (["--max-users", "30000", "--arrival-rate", "5"], ["--max-users", "'30000'", HOLD]),
    (["--max-users", "2000000", "--arrival-rate", "5"], ["--max-users", "≤ 1,000,000"]),
    (
        ["--test-plan", "99999999999999999999,1s"],
        ["--test-plan", "stage 1 '99999999999999999999,1s'", "USERS ≤ 1,000,000"],
    ),
    (["--test-plan", "10,1m;30000,1m"], ["--test-plan", "'10,1m;30000,1m'", HOLD]),
    (["--test-plan", "10,1e12"], ["--test-plan", "stage 1", "DURATION ≤ 31,536,000 s (a year"]),
    (["--test-plan", "9,30000000;9,30000000"], ["--test-plan", "60,000,000 s", "in all"]),
    (["--test-plan", "200000/s,1m"], ["--test-plan", "'200000/s,1m'", ARRIVE]),
    (["--test-plan", "1000000000/s,1m"], ["--test-plan", "stage 1", "RATE ≤ 100,000,000"]),
    (["-t", "inf"], ["--run-time", "'inf'", "≤ 31,536,000 s (a year"]),
    (["-t", "99999999999h"], ["--run-time", "'99999999999h'", "≤ 31,536,000 s"]),
    (["--iterations", "99999999999999"], ["--iterations", "≤ 1,000,000,000 (a billion passes"]),
    (["--throttle-requests", "1" + "0" * 400], ["--throttle-requests", "≤ 1,000,000 (60 times"]),
    (["--running-metrics", "inf"], ["--running-metrics", "'inf'", "≤ 31,536,000 s"]),
    (["--status-every", "1e400"], ["--status-every", "'1e400'", "≤ 31,536,000 s"]),
    (["--processes", "100000"], ["--processes", "'100000'", "4 per CPU", "or auto"]),
    (["--manager", "--expect-workers", "100000"], ["--expect-workers", "≤ 1,000 (the manager"]),
    (
        ["--manager", "--expect-workers", "2", "-u", "50001"],
        ["--users", "'50001'", "at most 50,000 users over these 2 processes, 25,000 in each"],
    ),
    (
        ["--processes", "2", "--arrival-rate", "200001"],
        ["--arrival-rate", "'200001'", "at most 200,000 arrivals a second over these 2"],
    ),
]


@pytest.mark.parametrize(("args", "words"), TOO_MUCH, ids=lambda v: " ".join(v)[:50])
def test_d2_a_number_beyond_what_a_process_or_a_run_holds_is_one_line_and_exit_2(
    tmp_path: Path, args: list[str], words: list[str]
) -> None:
    """Before, each was taken: the run froze (hatching a million users, catching up a billion
    arrivals: SIGTERM unheard), never ended (``-t inf``, a manager waiting for 100,000
    workers), crashed (a throttle of 10^400: ``OverflowError``, exit 1), ran as if nothing was
    typed (``--status-every 1e400``) or spawned a hundred thousand processes. (A NaN or
    infinite rate, ``-t nan`` and malformed stages were refused already.)"""
    if "-t" not in args and "--test-plan" not in args:
        args = [*args, "-t", "1"]
    result = run_gaggle(
        "run", write_test(tmp_path, PLAIN), "--host", "http://127.0.0.1:9", *args, timeout=30
    )
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines  # one line, no traceback
    assert lines[0].startswith("gaggle: error: "), lines
    for word in words:
        assert word in lines[0], lines[0]


def _id(value: object) -> str:
    if isinstance(value, int) and value.bit_length() > 64:  # str() refuses 4,300+ digits
        return f"an int of {value.bit_length()} bits"
    return str(value)[:30]


class Plain(TaskSet):
    @task
    async def index(self) -> None:
        await self.get("/")


@pytest.mark.parametrize(
    ("key", "value", "flag"),
    [
        (Default.USERS, 10**12, "--users"),
        (Default.USERS, 10**5000, "--users"),
        (Default.HATCH_RATE, 1e308, "--hatch-rate"),
        (Default.ARRIVAL_RATE, 1e9, "--arrival-rate"),
        (Default.RUN_TIME, math.nan, "--run-time"),
        (Default.RUN_TIME, math.inf, "--run-time"),
        (Default.RUN_TIME, 10**400, "--run-time"),
        (Default.TEST_PLAN, "99999999999999999999,1s", "--test-plan"),
        (Default.TEST_PLAN, "10/s,1s;1000000000/s,1s", "--test-plan"),
        (Default.MAX_USERS, 10**7, "--max-users"),
        (Default.ITERATIONS, 10**10, "--iterations"),
        (Default.THROTTLE_REQUESTS, 10**400, "--throttle-requests"),
        (Default.RUNNING_METRICS, math.inf, "--running-metrics"),
        (Default.STATUS_EVERY, math.nan, "--status-every"),
    ],
    ids=_id,
)
def test_d2_set_default_refuses_what_the_command_line_refuses(
    key: Default, value: object, flag: str
) -> None:
    """Before, each was taken (a NaN or infinite run time, 10^12 users, a billion arrivals a
    second). (A NaN or infinite rate was refused already.)"""
    with pytest.raises(ConfigError) as refused:
        Attack(Plain).set_default(key, value)
    assert refused.value.option == flag
    assert str(refused.value).startswith(f"{flag}: ")


def test_d2_a_program_is_one_process_and_its_command_line_is_weighed_so() -> None:
    """``Attack.execute()`` runs here, standalone: its flags' load is one process's."""
    options, _ = parse_run_args(["-u", "30000"])
    with pytest.raises(ConfigError, match=r"^--users: '30000' is not allowed; use at most 25,000"):
        Attack(Plain).plan(options)
    with pytest.raises(SystemExit) as exited:
        Attack(Plain).execute(["--host", "http://127.0.0.1:9", "--arrival-rate", "150000"])
    assert exited.value.code == 2


def test_a_gaggle_holds_one_process_bound_for_each_worker() -> None:
    """What is split over workers may be their number times one process's bound: the manager's
    command line, ``--processes`` and a worker reading the manager's whole-run values take it."""
    assert share_refused("users", USERS_PER_PROCESS, 1) == ""
    assert share_refused("users", 4 * USERS_PER_PROCESS, 4) == ""
    assert "over these 4 processes" in share_refused("users", 4 * USERS_PER_PROCESS + 1, 4)
    assert share_refused("arrivals", 3 * ARRIVALS_PER_PROCESS, 3) == ""
    assert share_refused("arrivals", ARRIVALS_PER_PROCESS + 0.5, 1)
    for given, shares in [
        ({"users": "100000", "manager": True, "expect_workers": "4", "host": HOST}, 4),
        ({"users": "50000", "processes": "2", "host": HOST}, 2),
    ]:
        role = role_from(split_gaggle_options(given))
        assert role.load_shares == shares
        assert Attack(Plain).plan(given, processes=role.load_shares).config.users == 25_000 * shares
        with pytest.raises(ConfigError, match=r"^--users: '\d+' is not allowed; use at most"):
            Attack(Plain).plan(given, processes=shares - 1)
    whole_run = {"users": 100_000, "hatch_rate": 1000.0}  # as a worker reads it
    assert build_config(whole_run).users == 100_000
    with pytest.raises(ConfigError, match="at most 25,000 users in one process"):
        build_config(whole_run, processes=1)
    assert build_config({"arrival_rate": 350_000.0}, processes=4).arrival_rate == 350_000.0
    with pytest.raises(ConfigError, match="at most 300,000 arrivals a second over these 3"):
        build_config({"arrival_rate": 350_000.0}, processes=3)


def test_the_bounds_are_what_they_say() -> None:
    """The largest values allowed are taken, the next ones refused, at each bound."""
    assert build_config({"users": USERS_PER_RUN}).users == USERS_PER_RUN
    with pytest.raises(ConfigError):
        build_config({"users": USERS_PER_RUN + 1})
    assert build_config({"arrival_rate": ARRIVALS_PER_RUN}).arrival_rate == ARRIVALS_PER_RUN
    with pytest.raises(ConfigError):
        build_config({"arrival_rate": math.nextafter(ARRIVALS_PER_RUN, math.inf)})
    assert build_config({"run_time": SECONDS_MAX}).run_time == SECONDS_MAX
    assert build_config({"run_time": "8760h"}).run_time == SECONDS_MAX
    with pytest.raises(ConfigError):
        build_config({"run_time": "8760h1s"})
    plan = f"{USERS_PER_PROCESS},1s;0,{SECONDS_MAX - 1}"
    assert build_config({"test_plan": plan}, processes=1).users == USERS_PER_PROCESS
