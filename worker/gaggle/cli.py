"""The ``gaggle`` command: ``gaggle run FILE [options]`` and ``gaggle demo-site``."""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence

from gaggle._version import __version__
from gaggle.attack import (
    EXIT_ABORTED,
    EXIT_CRASH,
    EXIT_THRESHOLDS,
    Attack,
    fail,
    print_rules,
    run_on_best_loop,
    setup_logging,
)
from gaggle.config import ConfigError, build_config
from gaggle.demo_site import add_demo_site_parser
from gaggle.distributed.local import run_local
from gaggle.distributed.manager import Manager
from gaggle.distributed.role import Role, role_from
from gaggle.distributed.rules import file_hash, rules_hash, rules_json
from gaggle.distributed.worker import Worker, WorkerError
from gaggle.loader import load_tasksets
from gaggle.option_table import PER_WORKER_KEYS
from gaggle.options import add_run_options, given_options, split_gaggle_options
from gaggle.ports import METRICS_PORT
from gaggle.runner import Aborted, Runner, RunPlan
from gaggle.taskset import TaskSet, TestDefinitionError

log = logging.getLogger("gaggle")


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
    add_demo_site_parser(commands)
    return parser


def run_command(namespace: argparse.Namespace) -> int:
    try:
        options = given_options(namespace)
        role = role_from(split_gaggle_options(options))
        tasksets = load_tasksets(namespace.file)
        attack = Attack(*tasksets)
        if namespace.list:
            print_rules(attack.tasksets)
            return 0
        if role.kind == "worker":
            return run_worker(namespace.file, tasksets, role, options)
        if role.kind == "manager":
            options.setdefault("metrics_bind", f"0.0.0.0:{METRICS_PORT}")
        plan = attack.plan(options)
    except (ConfigError, TestDefinitionError) as error:
        fail("gaggle", str(error))
    setup_logging(plan.config)
    try:
        return run_role(namespace.file, plan, role, tasksets, options)
    except ConfigError as error:  # found only when acting on it, e.g. a port already in use
        fail("gaggle", str(error))


def run_role(
    path: str,
    plan: RunPlan,
    role: Role,
    tasksets: list[type[TaskSet]],
    options: dict[str, object],
) -> int:
    try:
        rules = (rules_hash(tasksets), rules_json(tasksets))
        if role.kind == "local":
            return run_on_best_loop(run_local(path, plan, role, rules, options))
        if role.kind == "manager":
            result = run_on_best_loop(Manager(plan, role, *rules).run())
        else:
            result = run_on_best_loop(Runner(plan).run())
    except Aborted:
        return EXIT_ABORTED
    return 0 if result.passed else EXIT_THRESHOLDS


def run_worker(
    path: str, tasksets: list[type[TaskSet]], role: Role, options: dict[str, object]
) -> int:
    """A worker takes its load options from the manager; only its own logs are set here."""
    own = {key: value for key, value in options.items() if key in PER_WORKER_KEYS}
    ignored = sorted(set(options) - set(own))
    setup_logging(build_config(own))
    if ignored:
        log.warning("a worker takes %s from the manager; ignored here", ", ".join(ignored))
    worker = Worker(
        tasksets, role, own, (rules_hash(tasksets), rules_json(tasksets), file_hash(path))
    )
    try:
        run_on_best_loop(worker.run())
    except WorkerError as error:
        print(f"gaggle: error: {error}", file=sys.stderr)
        return error.exit_code
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
