"""The option table drives everything that names an option: each option is one declaration (a
field of RunConfig or RoleOptions, or the --list flag) and argparse, ``Default``, the converters,
the per-worker and Gaggle-mode keys, the flags of ``--processes`` workers, the operator's owned
options and README's tables all follow from it."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from gaggle import Default, RunConfig
from gaggle.distributed.processes import per_worker_file, worker_flags
from gaggle.errors import ConfigError
from gaggle.options.argv import add_run_options, parse_run_args, split_gaggle_options
from gaggle.options.config import CONVERTERS, RUN_OPTIONS, build_config
from gaggle.options.conflicts import role_from
from gaggle.options.fields import OPERATOR, Option
from gaggle.options.role import NOT_GIVEN, ROLE_OPTIONS, Role, RoleOptions
from gaggle.options.table import (
    COMMAND_OPTIONS,
    GAGGLE_KEYS,
    OPERATOR_KEYS,
    OPTIONS,
    PER_WORKER_KEYS,
    as_flags,
)
from gaggle_operator.spec import OWNED_FLAGS, SPEC_FIELDS, SpecError, parse_spec
from tests.conftest import ROOT

GENERATOR = ROOT / "tools" / "generate_options.py"


def sample(entry: Option) -> object:
    """A value as argparse gives it for the option."""
    if entry.action == "store_true":
        return True
    if entry.action == "count":
        return 2
    if entry.choices:
        return entry.choices[-1]
    if entry.action == "append":
        return ["first", "-second"]
    return "-dashed name.log"  # as a flag's value, a leading dash must not read as a flag


def test_every_field_of_the_models_is_one_entry_of_the_table() -> None:
    names = [entry.name for entry in OPTIONS]
    declared = [f.name for model in (RunConfig, RoleOptions) for f in fields(model)]
    assert sorted(names) == sorted([*declared, *(entry.name for entry in COMMAND_OPTIONS)])
    assert len(set(names)) == len(names)
    flags = [flag for entry in OPTIONS for flag in entry.flags]
    assert len(set(flags)) == len(flags), "a flag is declared twice"
    for entry in OPTIONS:
        assert entry.flag.startswith("--"), f"{entry.name}: the last flag is the long one"
        assert entry.help, f"{entry.flag} has no help"
    defaults = RunConfig()
    assert all(getattr(defaults, e.name) == e.default for e in RUN_OPTIONS)


def test_every_entry_is_an_argparse_flag_as_declared() -> None:
    parser = argparse.ArgumentParser()
    add_run_options(parser)
    actions = {action.dest: action for action in parser._actions if action.dest != "help"}
    assert set(actions) == {entry.name for entry in OPTIONS}
    for entry in OPTIONS:
        action = actions[entry.name]
        assert tuple(action.option_strings) == entry.flags
        assert action.help == entry.help
        assert action.metavar == entry.shown_metavar
        kind = {"store_true": "_StoreTrueAction", "count": "_CountAction"}
        kind |= {"append": "_AppendAction", "store": "_StoreAction"}
        assert type(action).__name__ == kind[entry.action], entry.flag
    titles = [group.title for group in parser._action_groups]
    assert [title for title in titles if title in {e.group for e in OPTIONS}] == list(
        dict.fromkeys(entry.group for entry in OPTIONS)
    )


def test_every_option_reads_back_from_the_flags_that_give_it() -> None:
    values = {entry.name: sample(entry) for entry in OPTIONS if entry not in COMMAND_OPTIONS}
    parsed, listing = parse_run_args(as_flags(values), gaggle_flags=True)
    assert (parsed, listing) == (values, False)


def test_default_is_the_run_options_keys() -> None:
    assert [(key.name, key.value) for key in Default] == [
        (entry.name.upper(), entry.name) for entry in RUN_OPTIONS
    ]


def test_converters_are_the_declared_ones_under_the_declared_flag() -> None:
    assert list(CONVERTERS) == [f.name for f in fields(RunConfig)]
    for entry in RUN_OPTIONS:
        assert CONVERTERS[entry.name][0] == entry.flag
    with pytest.raises(ConfigError, match=r"^--requests-format: 'xml' is not allowed"):
        build_config({"requests_format": "xml"})


def test_per_worker_options_round_trip_to_processes_workers() -> None:
    assert set(PER_WORKER_KEYS) == {entry.name for entry in RUN_OPTIONS if entry.per_worker}
    given = {entry.name: sample(entry) for entry in RUN_OPTIONS}
    parsed, _ = parse_run_args(worker_flags(given, 3))
    expected: dict[str, object] = {}
    for entry in RUN_OPTIONS:
        if entry.per_worker == "same":
            expected[entry.name] = given[entry.name]
        elif entry.per_worker == "numbered":
            expected[entry.name] = per_worker_file(str(given[entry.name]), 3)
    assert parsed == expected
    assert expected, "no per-worker option reached the workers"
    assert "metrics_bind" in PER_WORKER_KEYS  # a worker may serve its own /metrics, but
    assert "metrics_bind" not in parsed  # --processes workers would all ask for one port


def test_gaggle_keys_are_the_role_options() -> None:
    assert tuple(f.name for f in fields(RoleOptions)) == GAGGLE_KEYS
    values = {entry.name: sample(entry) for entry in OPTIONS if entry not in COMMAND_OPTIONS}
    role_flags = split_gaggle_options(values)
    assert set(role_flags) == set(GAGGLE_KEYS)
    assert set(values) == {f.name for f in fields(RunConfig)}


def test_a_role_takes_the_declared_defaults_and_converters() -> None:
    worker = role_from({"worker": True})
    assert (worker.manager_host, worker.manager_port, worker.join_timeout) == (
        NOT_GIVEN.manager_host,
        NOT_GIVEN.manager_port,
        NOT_GIVEN.join_timeout,
    )
    manager = role_from({"manager": True, "expect_workers": "2"})
    assert (manager.bind_host, manager.bind_port, manager.expect_workers) == ("0.0.0.0", 5115, 2)
    assert (Role().bind_port, Role().processes) == (NOT_GIVEN.manager_bind_port, 1)
    for entry in ROLE_OPTIONS:
        if entry.name in ("manager_port", "manager_bind_port"):
            with pytest.raises(ConfigError, match=f"^{entry.flag}: '0' is not allowed; use a port"):
                entry.check("0")


def test_the_operator_owns_the_options_the_table_gives_it() -> None:
    assert OWNED_FLAGS == OPERATOR_KEYS
    assert set(GAGGLE_KEYS) <= OPERATOR_KEYS
    for entry in OPTIONS:
        if entry.spec not in (OPERATOR, ""):  # a field the operator reads, or a list of them
            read = [f for f in SPEC_FIELDS if f == entry.spec or f.startswith(entry.spec + "[]")]
            assert read, f"{entry.flag}: spec.{entry.spec} is not a LoadTest field"
    base = {"script": {"inline": "x = 1"}, "host": "http://t:80", "users": 1, "runTime": "1s"}
    for entry in OPTIONS:
        if entry.spec:
            args = as_flags({entry.name: sample(entry)})
            with pytest.raises(SpecError, match=f"{entry.flag} is set by the operator"):
                parse_spec({**base, "image": "i", "args": args})


def test_readme_and_default_are_written_from_the_table() -> None:
    result = subprocess.run(
        [sys.executable, str(GENERATOR), "--check"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_the_drift_check_fails_on_a_stale_row(tmp_path: Path) -> None:
    options = Path("worker") / "gaggle" / "options"
    (tmp_path / options).mkdir(parents=True)
    shutil.copy(ROOT / options / "_generated_default.py", tmp_path / options)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    row = "| `--no-metrics` | do not track metrics |"
    assert row in readme
    (tmp_path / "README.md").write_text(readme.replace(row, row.replace("track", "keep")))
    result = subprocess.run(
        [sys.executable, str(GENERATOR), "--check", "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "README.md: differs from the option table" in result.stderr
