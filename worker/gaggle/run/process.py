"""What a command line needs around a run: exit codes, the one-line error, ``--list``, the
console, logging, and the event loop. ``gaggle``, ``Attack.execute()`` and ``gaggle-operator
manage`` share them, so they exit and print alike.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from collections.abc import Coroutine, Sequence
from typing import Any, NoReturn, TypeVar

from rich.console import Console

from gaggle.load import LoadShape
from gaggle.options import RunConfig
from gaggle.report import LogFile, log_file_path
from gaggle.taskset import TaskSet, describe_rules

T = TypeVar("T")
EXIT_CRASH = 1  # a bug in gaggle, or a worker that lost its manager
EXIT_BAD_INPUT = 2  # an option, spec field or file that is not allowed (one line says why)
EXIT_THRESHOLDS = 3  # the run completed and a --threshold rule failed
EXIT_ABORTED = 130  # a second Ctrl-C (128 + SIGINT, as shells report it)


def fail(prog: str, message: str) -> NoReturn:
    print(f"{prog}: error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_BAD_INPUT)


def print_rules(tasksets: Sequence[type[TaskSet]], shape: type[LoadShape] | None = None) -> None:
    """``--list``: task sets and their tasks, in the order tables show them, and the load
    shape that drives the users."""
    for ts_index, rules in enumerate(describe_rules(list(tasksets))):
        wait = f", wait {rules['wait_time']}" if rules["wait_time"] else ""
        print(f"{ts_index + 1}: {rules['name']} (weight {rules['weight']}{wait})")
        for task_index, task in enumerate(rules["tasks"]):
            flags = [k for k in ("on_start", "on_stop") if task[k]]
            if task["sequence"] is not None:
                flags.append(f"sequence {task['sequence']}")
            extra = f" [{', '.join(flags)}]" if flags else ""
            print(f"    {task_index + 1}: {task['name']} (weight {task['weight']}){extra}")
    if shape is not None:
        print(f"load shape: {shape.__name__} (a tick every {shape.tick_interval:g} s)")


def make_console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=120)
    return console


class CurrentStderr:
    """Whatever ``sys.stderr`` is when a record is written: while the live view runs on a
    terminal, rich swaps in a proxy that prints above the panel instead of through it."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def setup_logging(config: RunConfig) -> None:
    """Console level from -v (warnings by default), file level from -g (info by default).
    Every module logs to its own child of ``gaggle`` (``gaggle.users.pool``…), so one handler
    here serves them all and a reader can still filter by part."""
    logger = logging.getLogger("gaggle")
    logger.handlers.clear()
    logger.propagate = False
    formatter = logging.Formatter("%(asctime)s [%(levelname)5s] %(message)s", "%H:%M:%S")
    console_level = max(logging.DEBUG, logging.WARNING - 10 * config.verbose)
    stream = logging.StreamHandler(CurrentStderr())
    stream.setLevel(console_level)
    stream.setFormatter(formatter)
    logger.addHandler(stream)
    levels = [console_level]
    if (log_file := log_file_path(config)) is not None:
        file_level = max(logging.DEBUG, logging.INFO - 10 * max(0, config.log_level - 1))
        handler = LogFile(log_file)  # a write that fails is one line, not one per record
        handler.setLevel(file_level)
        handler.setFormatter(formatter)
        logger.addHandler(handler)
        levels.append(file_level)
    logger.setLevel(min(levels))


YOUNG_COLLECTION = 10_000  # allocations between young collections (CPython's default: 700)


def settle_heap() -> None:
    """Set the cyclic collector up for a run, whose users live long and allocate fast.

    Collect, then freeze what is alive now — the imports, the test file, the plan: they live as
    long as the process, and a full collection that walked them mid-run stalled the event loop
    some 50 ms. And collect the young generation every 10,000 allocations rather than 700:
    hatching 10,000 users otherwise set off 7 or 8 full collections of up to 0.5 s each in its
    first seconds (every new user counts as young), for no memory saved — their cycles are few.
    """
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, YOUNG_COLLECTION), middle, old)


def run_on_best_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency where it builds
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)
