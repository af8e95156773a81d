"""Every option of ``gaggle run``, in one table: read from the fields that declare them.

The run options are RunConfig's fields (gaggle.options.config), the Gaggle-mode options RoleOptions'
(gaggle.options.role), and ``--list`` is the one command flag. What used to be kept by hand in
several places comes from here: the argparse flags (gaggle.options.argv), the Gaggle-mode keys split
off a run's options, the keys each worker keeps for itself, the flags a ``--processes`` worker
is started with, the options the operator sets, and README's tables (tools/generate_options.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from gaggle.options.config import RUN_OPTIONS
from gaggle.options.converters import boolean
from gaggle.options.fields import RUN, Option
from gaggle.options.role import ROLE_OPTIONS

LIST = Option(
    flags=("-l", "--list"),
    help="list task sets and tasks, then exit",
    convert=boolean,
    group=RUN,
    action="store_true",
    name="list",
    default=False,
)
COMMAND_OPTIONS = (LIST,)  # flags of the command itself: they configure no run and no role
OPTIONS: tuple[Option, ...] = (*RUN_OPTIONS, *COMMAND_OPTIONS, *ROLE_OPTIONS)
OPTIONS_BY_NAME = {entry.name: entry for entry in OPTIONS}
assert len(OPTIONS_BY_NAME) == len(OPTIONS), "two options with one name"

GAGGLE_KEYS = tuple(entry.name for entry in ROLE_OPTIONS)
CONFIG_KEYS = frozenset(entry.name for entry in (*RUN_OPTIONS, *ROLE_OPTIONS))
# options each worker keeps for itself; the manager's value is not sent to workers
PER_WORKER_KEYS = tuple(entry.name for entry in RUN_OPTIONS if entry.per_worker)
# options the operator sets from a LoadTest's fields or its shape: not for its ``args``
OPERATOR_KEYS = frozenset(entry.name for entry in OPTIONS if entry.spec)


def as_flags(values: Mapping[str, object]) -> list[str]:
    """Option values as the flags that give them back: argparse reads these to ``values``
    (a switch that is False and a count of 0 are left out, as not given)."""
    flags: list[str] = []
    for name, value in values.items():
        entry = OPTIONS_BY_NAME[name]
        if entry.action == "store_true":
            flags += [entry.flag] if value else []
        elif entry.action == "count":
            flags += [entry.flag] * int(str(value))
        elif entry.action == "append":
            items = value if isinstance(value, list | tuple) else [value]
            flags += [f"{entry.flag}={item}" for item in items]
        else:
            flags.append(f"{entry.flag}={value}")
    return flags
