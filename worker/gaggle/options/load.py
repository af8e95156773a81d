"""The host and the load model's options: the first fields of ``config.RunConfig``.

They live apart from the rest of the run options because they are read together — which load
model the run is (closed: users, a plan of users; open: an arrival rate, a plan of rates) — and
because ``RunConfig`` in one module outgrew it. ``RunConfig`` inherits them, so the option order
(``--help``, README, ``Default``) is unchanged: the host, then the load.
"""

from __future__ import annotations

from dataclasses import dataclass

from gaggle.load import ArrivalSchedule, PlanStage, is_rate_plan, stages
from gaggle.options.converters import (
    ARRIVALS_PER_PROCESS,
    ITERATIONS_MAX,
    ITERATIONS_WHY,
    USERS_PER_PROCESS,
    USERS_PER_RUN,
    USERS_PER_RUN_WHY,
    arrival_rate,
    optional,
    parse_duration,
    plan_text,
    rate,
    validate_host,
    whole,
)
from gaggle.options.fields import option


@dataclass(frozen=True, slots=True)
class LoadOptions:
    host: str | None = option(
        "-H",
        "--host",
        default=None,
        convert=optional(validate_host),
        metavar="URL",
        help="host to load test, e.g. http://127.0.0.1:8080",
        doc="host to load test (or `Default.HOST`, or a task set's `host`)",
        spec="host",
    )
    users: int = option(
        "-u",
        "--users",
        default=0,  # 0 until resolved: the default is the number of CPUs
        convert=whole(1, USERS_PER_RUN, USERS_PER_RUN_WHY),
        metavar="N",
        help="concurrent users (default: number of CPUs)",
        doc=f"concurrent users (default: number of CPUs; at most {USERS_PER_PROCESS:,} a process: "
        "Gaggle mode splits them over its workers)",
        spec="users",
    )
    hatch_rate: float = option(
        "-r",
        "--hatch-rate",
        default=1.0,
        convert=rate,
        metavar="RATE",
        help="users started per second (default: 1)",
        doc="users started per second, fractions allowed (default: 1)",
        spec="hatchRate",
    )
    run_time: float = option(
        "-t",
        "--run-time",
        default=0.0,  # seconds; 0 runs until stopped
        convert=parse_duration,
        metavar="TIME",
        help="stop after 30s, 20m, 3h, 1h30m…",
        doc="stop after `30s`, `20m`, `3h`, `1h30m` or seconds (default: until Ctrl-C)",
        spec="runTime",
    )
    test_plan: str | None = option(
        "--test-plan",
        default=None,  # canonical text (gaggle.load.stages); None: -u/-r/-t say the load
        convert=optional(plan_text),
        metavar="PLAN",
        help="stages USERS,DURATION;… e.g. 10,1m;10,5m;0,30s (instead of -u/-r/-t)",
        spec="plan",
        doc="stages `USERS,DURATION;…`, e.g. `10,1m;10,5m;0,30s`: each goes linearly to USERS "
        "over DURATION; the run ends with the plan ([below](#staged-plans)); not with -u/-r/-t",
    )
    iterations: int = option(
        "--iterations",
        default=0,  # 0: users loop until the run stops
        convert=whole(1, ITERATIONS_MAX, ITERATIONS_WHY),
        metavar="N",
        help="each user runs its task cycle N times, then stops; the run ends when all have",
        spec="iterations",
        doc="each user runs its task cycle N times, runs its `on_stop` tasks and stops; the run "
        "ends when all have, or at `-t` ([below](#iterations))",
    )
    arrival_rate: float = option(
        "--arrival-rate",
        default=0.0,  # 0: a closed model (users loop); an open one starts iterations at R/s
        convert=arrival_rate,
        metavar="R",
        help="open model: start R iterations per second whatever the target's speed "
        "(with -t; not with -u/-r)",
        spec="arrivalRate",
        doc="open model: start R iterations per second, whatever the target's speed, for `-t` "
        "([below](#open-model-arrival-rates)); not with `-u`/`-r`/`--iterations`; at most "
        f"{ARRIVALS_PER_PROCESS:,} a process (Gaggle mode splits them over its workers)",
    )
    max_users: int = option(
        "--max-users",
        default=1000,  # k6's maxVUs: a stalled target costs at most this many connections
        convert=whole(1, USERS_PER_RUN, USERS_PER_RUN_WHY),
        metavar="N",
        help="open model: the pool of users grows up to N; an arrival finding none free is "
        "dropped and counted (default: 1000)",
        spec="maxUsers",
        doc="open model: the users' pool grows up to N; an arrival that finds none free is "
        f"dropped and counted (default: 1000; at most {USERS_PER_PROCESS:,} a process)",
    )

    @property
    def plan_stages(self) -> tuple[PlanStage, ...]:
        """--test-plan's stages; none when -u/-r/-t say the load."""
        return stages(self.test_plan) if self.test_plan else ()

    @property
    def open_model(self) -> bool:
        """Iterations start on a schedule (--arrival-rate or a plan of rates), not user loops."""
        return self.arrival_rate > 0 or is_rate_plan(self.plan_stages)

    def arrival_schedule(self) -> ArrivalSchedule:
        if self.arrival_rate > 0:
            return ArrivalSchedule.constant(self.arrival_rate, self.run_time)
        return ArrivalSchedule.of_plan(self.plan_stages)
