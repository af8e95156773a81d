"""``Attack``: the programmatic entry point (the seed's GooseAttack) and what ``gaggle run`` uses.

It turns task sets plus options (built-in defaults < ``set_default`` < command line) into a
validated ``RunPlan``, then runs it on uvloop when installed. Every problem with the input is
found here, before any user starts, and reported as one line naming the option and the value.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console

from gaggle.errors import ConfigError, TestDefinitionError
from gaggle.load import LoadShape, validate_shape
from gaggle.options import (
    HTTP_CLIENTS,
    Default,
    RunConfig,
    build_config,
    check_shape_alone,
    parse_run_args,
    validate_host,
)
from gaggle.report import check_output_paths
from gaggle.run import (
    EXIT_ABORTED,
    Aborted,
    Runner,
    RunPlan,
    RunResult,
    fail,
    make_console,
    print_rules,
    run_on_best_loop,
    setup_logging,
)
from gaggle.taskset import TaskSet


def validate_tasksets(tasksets: Sequence[type[TaskSet]]) -> list[type[TaskSet]]:
    if not tasksets:
        raise TestDefinitionError(
            "the load test defines no task set: subclass gaggle.TaskSet and add @task methods"
        )
    for ts in tasksets:
        if not (isinstance(ts, type) and issubclass(ts, TaskSet)):
            raise TestDefinitionError(f"{ts!r} is not a TaskSet subclass")
        where = f"task set {ts.__name__}"
        if not ts.tasks:
            raise TestDefinitionError(f"{where} has no tasks: mark async methods with @task")
        if isinstance(ts.weight, bool) or not isinstance(ts.weight, int) or ts.weight < 1:
            raise TestDefinitionError(
                f"{where}: weight={ts.weight!r} is not allowed; use a whole number ≥ 1"
            )
        if ts.wait_time is not None and not callable(ts.wait_time):
            raise TestDefinitionError(
                f"{where}: wait_time={ts.wait_time!r} is not allowed; use between(a, b), "
                "constant(s), pacing(s) or a function of the task's seconds"
            )
        if ts.host is not None:
            validate_host(f"{ts.__name__}.host", ts.host)
        if ts.client is not None and ts.client not in HTTP_CLIENTS:
            raise TestDefinitionError(
                f"{where}: client={ts.client!r} is not allowed; use one of: "
                + ", ".join(HTTP_CLIENTS)
            )
    return list(tasksets)


def resolve_hosts(config: RunConfig, tasksets: Sequence[type[TaskSet]]) -> list[str]:
    hosts: list[str] = []
    for ts in tasksets:
        host = validate_host(f"{ts.__name__}.host", ts.host) if ts.host else config.host
        if host is None:
            raise ConfigError(
                "--host",
                None,
                "",
                "--host: a host must be defined via --host, set_default(Default.HOST, ...) or "
                f"the task set's host attribute (no host defined for {ts.__name__})",
            )
        hosts.append(host)
    return hosts


class Attack:
    """A load test as a program (the seed's GooseAttack).

    ``Attack(WebsiteUser).set_default(Default.HOST, url).execute()``
    """

    def __init__(self, *tasksets: type[TaskSet]) -> None:
        self.tasksets: list[type[TaskSet]] = list(tasksets)
        self.defaults: dict[str, object] = {}
        self.shape: type[LoadShape] | None = None

    def set_load_shape(self, shape: type[LoadShape] | None) -> Attack:
        """Let ``shape``'s ticks drive the users instead of -u/-r/-t or a --test-plan."""
        self.shape = shape
        return self

    def register_taskset(self, taskset: type[TaskSet]) -> Attack:
        self.tasksets.append(taskset)
        return self

    def set_default(self, key: Default, value: object) -> Attack:
        """A default that the command line overrides; checked now, like a flag would be."""
        if not isinstance(key, Default):
            raise ConfigError("set_default", key, "use a gaggle.Default key, e.g. Default.HOST")
        build_config({key.value: value})
        self.defaults[key.value] = value
        return self

    def set_scheduler(self, scheduler: str) -> Attack:
        return self.set_default(Default.SCHEDULER, scheduler)

    def plan(
        self,
        options: dict[str, object] | None = None,
        *,
        console: Console | None = None,
        seed: int | None = None,
        processes: int | None = 1,
    ) -> RunPlan:
        """Validate everything; raises ConfigError or TestDefinitionError. ``processes``: how
        many share the load (a gaggle's workers), each holding at most its bound of users and
        arrivals; None for a worker, whose options are its manager's whole run."""
        tasksets = validate_tasksets(self.tasksets)
        if self.shape is not None:
            check_shape_alone(self.shape, self.defaults, options or {})
            validate_shape(self.shape)
        config = build_config(self.defaults, options or {}, processes=processes)
        return RunPlan(
            config=config,
            tasksets=tasksets,
            hosts=resolve_hosts(config, tasksets),
            console=console or make_console(),
            seed=seed,
            shape=self.shape,
        )

    async def run_async(
        self, *, console: Console | None = None, seed: int | None = None, **options: object
    ) -> RunResult:
        """Run in the current event loop with RunConfig field names as keyword options."""
        return await Runner(self.plan(options, console=console, seed=seed)).run()

    def run(self, **options: Any) -> RunResult:
        """Run to the end on a new event loop (uvloop when installed) and return the result."""
        return run_on_best_loop(self.run_async(**options))

    def execute(self, args: Sequence[str] | None = None, prog: str = "gaggle") -> RunResult:
        """Parse ``args`` (default: ``sys.argv[1:]``), run, return the result. Bad input
        exits with status 2 and one line on stderr; a second Ctrl-C exits with 130."""
        argv = sys.argv[1:] if args is None else args
        try:
            options, listing = parse_run_args(argv, prog=prog)
            if listing:
                print_rules(self.tasksets, self.shape)
                raise SystemExit(0)
            plan = self.plan(options)
            check_output_paths(plan.config)  # before -L is opened, as `gaggle run` does
        except (ConfigError, TestDefinitionError) as error:
            fail(prog, str(error))
        setup_logging(plan.config)
        try:
            return run_on_best_loop(Runner(plan).run())
        except Aborted:
            raise SystemExit(EXIT_ABORTED) from None
        except (ConfigError, TestDefinitionError) as error:  # found when acting on it: a port
            fail(prog, str(error))  # in use, an unwritable -R, a load shape's bad tick
