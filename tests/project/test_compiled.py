"""The compiled engine (``[tool.gaggle] compiled`` in pyproject.toml, built by tools/compiled.py
with mypyc) is the engine the benchmarks measure and compiled wheels ship, so it must behave as
the pure one: the suites that drive its modules run on it here, in a pytest of their own.

mypyc changes what a module is — no Python frames, early-bound calls, generator protocol in C —
and each of those once broke something only a compiled run shows: the loop watch found no task
on the stack, and a reqwest request cancelled at the stop failed with a TypeError.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tools import compiled

ROOT = Path(__file__).resolve().parents[2]

# Every module of [tool.gaggle] compiled runs in these: the users' lifecycle and stopping, the
# three clients' behaviour suite, the metrics, both load models, /metrics' request series (its
# rows against a fold from scratch, and the busiest names' series with the rest folded).
SUITES = (
    "tests/http",
    "tests/engine",
    "tests/load",
    "tests/metrics",
    "tests/web",
    "tests/report/test_cardinality.py",
)


@pytest.fixture(scope="module")
def build() -> Path:
    return compiled.build()


def on_build(build: Path) -> dict[str, str]:
    return os.environ | {"PYTHONPATH": str(build)}


def test_every_listed_module_is_imported_compiled_from_the_build(build: Path) -> None:
    names = compiled.compiled_names()
    assert "gaggle.users.user" in names
    assert "gaggle.http.httptools_connection" in names
    script = "import importlib, sys\n"
    script += "for name in sys.argv[1:]: print(importlib.import_module(name).__file__)"
    done = subprocess.run(
        [sys.executable, "-c", script, *names],
        env=on_build(build),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    files = done.stdout.split()
    assert len(files) == len(names)
    assert all(file.startswith(str(build)) and file.endswith(".so") for file in files), files


@pytest.mark.timeout(1800)
def test_the_engine_suites_pass_on_the_compiled_engine(build: Path, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not cluster"]
    command += ["-o", f"pythonpath={build} operator", f"--basetemp={tmp_path / 'run'}", *SUITES]
    done = subprocess.run(
        command, cwd=ROOT, env=on_build(build), capture_output=True, text=True, timeout=1700
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert " passed" in done.stdout.splitlines()[-1]
