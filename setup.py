"""The engine's hot modules compiled to C by mypyc, when ``GAGGLE_COMPILE=1`` asks for it.

Everything else about the package is in pyproject.toml; this file exists only because extension
modules cannot be declared there. Without ``GAGGLE_COMPILE=1`` the package is pure Python, as an
editable install must be (a compiled module beside its source would shadow every later edit).
The modules are ``[tool.gaggle] compiled`` in pyproject.toml: the request path, where per
request the interpreter's dispatch is most of a generator's CPU (README, Performance).
``tools/compiled.py`` builds this way into a cache for the benchmarks and the tests.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from setuptools import setup


def compiled_modules() -> list[Any]:
    if os.environ.get("GAGGLE_COMPILE", "0") != "1":
        return []
    from mypyc.build import mypycify  # the build's own dependency: only when compiling

    here = Path(__file__).resolve().parent
    names = tomllib.loads((here / "pyproject.toml").read_text())["tool"]["gaggle"]["compiled"]
    return mypycify([f"worker/{name.replace('.', '/')}.py" for name in names], opt_level="3")


setup(ext_modules=compiled_modules())
