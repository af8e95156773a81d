"""The command-line options of a run, with Goose 0.10's names and meanings.

One parser serves ``gaggle run FILE``, ``Attack.execute()`` and the operator's check of a
LoadTest's ``args``; its flags are the option table's (gaggle.options.table). Every option defaults
to "not given" so that ``set_default`` values are only overridden by what the user actually typed;
values are checked by ``config.build_config`` and ``conflicts.role_from``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, NoReturn

from gaggle.errors import ConfigError
from gaggle.options.table import CONFIG_KEYS, GAGGLE_KEYS, OPTIONS, OPTIONS_BY_NAME


def add_run_options(parser: argparse.ArgumentParser) -> None:
    groups: dict[str, Any] = {}
    for entry in OPTIONS:
        if entry.group not in groups:
            groups[entry.group] = parser.add_argument_group(entry.group)
        settings: dict[str, Any] = {"dest": entry.name, "action": entry.action, "help": entry.help}
        # a config option left out is "not given"; a command flag (--list) reads as its default
        settings["default"] = argparse.SUPPRESS if entry.name in CONFIG_KEYS else entry.default
        if entry.takes_value:
            settings["metavar"] = entry.shown_metavar
        groups[entry.group].add_argument(*entry.flags, **settings)


def given_options(namespace: argparse.Namespace) -> dict[str, object]:
    """The config values the user typed (names as in RunConfig and RoleOptions)."""
    return {key: value for key, value in vars(namespace).items() if key in CONFIG_KEYS}


def split_gaggle_options(values: dict[str, object]) -> dict[str, object]:
    """Take the Gaggle-mode flags out of ``values``: they configure a role, not a run (the
    role's ``load_shares`` then weighs the load, in ``Attack.plan``)."""
    return {key: values.pop(key) for key in GAGGLE_KEYS if key in values}


class _RaisingParser(argparse.ArgumentParser):
    """A parser that raises ConfigError instead of printing usage and exiting (the operator
    checks a LoadTest's ``args`` with it)."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError("args", None, message, message=message)


def parse_run_args(
    argv: Sequence[str],
    prog: str = "gaggle",
    *,
    raise_errors: bool = False,
    gaggle_flags: bool = False,
) -> tuple[dict[str, object], bool]:
    """Parse options for ``Attack.execute()``: (given config values, whether --list was asked).
    ``raise_errors``: a bad flag raises ConfigError instead of exiting with usage;
    ``gaggle_flags``: Gaggle-mode flags are returned among the values instead of refused."""
    parser_class = _RaisingParser if raise_errors else argparse.ArgumentParser
    parser = parser_class(prog=prog, description="Run a Gaggle load test.")
    add_run_options(parser)
    namespace = parser.parse_args(list(argv))
    listing = bool(namespace.list)
    values = given_options(namespace)
    if not gaggle_flags:
        for key, value in split_gaggle_options(values).items():
            raise ConfigError(
                OPTIONS_BY_NAME[key].flag, value, "Gaggle mode runs with `gaggle run FILE`"
            )
    return values, listing
