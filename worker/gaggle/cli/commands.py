"""The ``gaggle`` command: ``gaggle run FILE [options]`` and ``gaggle demo-site``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass

from gaggle._version import __version__
from gaggle.attack import Attack
from gaggle.cli.loader import load_test
from gaggle.distributed.rules import file_hash, rules_hash, rules_json
from gaggle.errors import ConfigError, TestDefinitionError
from gaggle.kits import METRICS_PORT
from gaggle.load import LoadShape
from gaggle.options import (
    PER_WORKER_KEYS,
    Role,
    RoleKind,
    add_run_options,
    build_config,
    given_options,
    role_from,
    split_gaggle_options,
)
from gaggle.report import check_output_paths
from gaggle.run import (
    EXIT_ABORTED,
    EXIT_CRASH,
    EXIT_THRESHOLDS,
    Aborted,
    Runner,
    RunPlan,
    fail,
    print_rules,
    run_on_best_loop,
    setup_logging,
)
from gaggle.taskset import TaskSet

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gaggle", description="Distributed HTTP load testing: load tests are Python code."
    )
    parser.add_argument("-V", "--version", action="version", version=f"gaggle {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser("run", help="run a load test file", description="Run a load test.")
    run.add_argument("file", help="the load test: a Python file defining TaskSet subclasses")
    add_run_options(run)
    run.set_defaults(func=run_command)
    demo = commands.add_parser("demo-site", help="serve a small demo target site")
    demo.add_argument("--bind", default="127.0.0.1", help="address (default: 127.0.0.1)")
    demo.add_argument("--port", type=int, default=8080, help="port; 0 picks a free one")
    demo.add_argument("--port-file", help="write the port here once listening")
    demo.set_defaults(func=demo_site_command)
    return parser


# Gaggle mode's roles (grpc, protobuf: ~11 MiB) and the demo site (aiohttp's server: ~12 MiB)
# are imported by the command that runs them: a plain run carries neither.
def demo_site_command(namespace: argparse.Namespace) -> int:
    from gaggle.cli.demo_site import serve_demo_site

    return serve_demo_site(namespace)


@dataclass(slots=True)
class RunCommand:
    """A ``gaggle run FILE ...`` command line, read and checked: the role this process plays, the
    test's task sets and the run options. ``gaggle-operator manage`` reads its own with it too."""

    path: str
    options: dict[str, object]
    role: Role
    tasksets: list[type[TaskSet]]
    listing: bool  # --list
    shape: type[LoadShape] | None = None  # the test file's LoadShape: it drives the users

    def plan(self) -> RunPlan:
        """The run, checked: its options and every file it will write (before any is opened)."""
        attack = Attack(*self.tasksets).set_load_shape(self.shape)
        plan = attack.plan(self.options, processes=self.role.load_shares)
        check_output_paths(plan.config, users_here=self.role.kind is not RoleKind.MANAGER)
        return plan

    def rules(self) -> tuple[str, str]:
        """What a manager and its workers compare (the hash, and the rules it hashes)."""
        return rules_hash(self.tasksets), rules_json(self.tasksets)


def read_run_command(namespace: argparse.Namespace) -> RunCommand:
    """Raises ConfigError or TestDefinitionError, naming the option or the test's problem."""
    options = given_options(namespace)
    role = role_from(split_gaggle_options(options))
    if os.environ.get("GAGGLE_CONTROL_TOKEN"):
        options.setdefault("control_token", os.environ["GAGGLE_CONTROL_TOKEN"])
    if role.kind is RoleKind.MANAGER:
        options.setdefault("metrics_bind", f"0.0.0.0:{METRICS_PORT}")
        if role.token:  # who may join may steer: the operator's manager pod relies on this
            options.setdefault("control_token", role.token)
    tasksets, shape = load_test(namespace.file)
    return RunCommand(namespace.file, options, role, tasksets, bool(namespace.list), shape)


def run_command(namespace: argparse.Namespace) -> int:
    try:
        command = read_run_command(namespace)
        if command.listing:
            print_rules(Attack(*command.tasksets).tasksets, command.shape)
            return 0
        if command.role.kind is RoleKind.WORKER:
            return run_worker(command)
        plan = command.plan()
    except (ConfigError, TestDefinitionError) as error:
        fail("gaggle", str(error))
    setup_logging(plan.config)
    try:
        return run_role(command, plan)
    except (ConfigError, TestDefinitionError) as error:  # found only when acting on it: a port
        fail("gaggle", str(error))  # already in use, a load shape's bad tick mid-run


def run_role(command: RunCommand, plan: RunPlan) -> int:
    role = command.role
    try:
        if role.kind is RoleKind.LOCAL:
            from gaggle.distributed.processes import run_local

            return run_on_best_loop(
                run_local(command.path, plan, role, command.rules(), command.options)
            )
        if role.kind is RoleKind.MANAGER:
            from gaggle.distributed.manager import Manager

            result = run_on_best_loop(Manager(plan, role, *command.rules()).run())
        else:
            result = run_on_best_loop(Runner(plan).run())
    except Aborted:
        return EXIT_ABORTED
    return 0 if result.passed else EXIT_THRESHOLDS


def run_worker(command: RunCommand) -> int:
    """A worker takes its load options from the manager; only its own logs are set here."""
    from gaggle.distributed.worker import Worker, WorkerError

    own = {key: value for key, value in command.options.items() if key in PER_WORKER_KEYS}
    ignored = sorted(set(command.options) - set(own))
    config = build_config(own)
    check_output_paths(config)  # before it looks for a manager (ConfigError: run_command's)
    setup_logging(config)
    if ignored:
        log.warning("a worker takes %s from the manager; ignored here", ", ".join(ignored))
    worker = Worker(
        command.tasksets, command.role, own, (*command.rules(), file_hash(command.path))
    )
    try:
        run_on_best_loop(worker.run())
    except WorkerError as error:
        print(f"gaggle: error: {error}", file=sys.stderr)
        return error.exit_code
    except Aborted:  # a second Ctrl-C on the worker
        return EXIT_ABORTED
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    namespace = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    if not getattr(namespace, "func", None):
        parser.print_help()
        return 2
    try:
        code: int = namespace.func(namespace)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        return EXIT_ABORTED
    except Exception:
        traceback.print_exc()
        print("gaggle: internal error (this is a bug in gaggle; please report it)", file=sys.stderr)
        return EXIT_CRASH
    return code


def entry() -> None:
    raise SystemExit(main())
