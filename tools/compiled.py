"""Build the engine with its hot modules compiled by mypyc, once per source state, into a cache.

    .venv/bin/python tools/compiled.py          # builds if needed; prints the folder

The folder (``~/.cache/gaggle/compiled/<key>``; ``GAGGLE_CACHE`` moves the root) holds the
``gaggle`` package as ``pip install --target`` lays it out with ``GAGGLE_COMPILE=1`` (setup.py):
the modules of ``[tool.gaggle] compiled`` as extension modules, the rest as their source. Put it
first on ``PYTHONPATH`` and ``import gaggle`` is the compiled engine: benchmarks/throughput.py
measures it beside the pure one, tests/project/test_compiled.py runs the behaviour suites on it.

The build happens in a copy of the sources in a temporary folder, never in the checkout: a
compiled module beside its source would shadow every later edit. The key hashes what the build
reads (worker/, setup.py, pyproject.toml) and the compiler's and Python's versions, so an edit to
any engine module builds again (~1 min); the newest two builds are kept. A file lock lets two
processes ask at once.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("GAGGLE_CACHE", Path.home() / ".cache" / "gaggle")) / "compiled"
KEEP = 2  # builds kept: this checkout's and one other (a second clone, the previous commit)
IN_USE = 3 * 3600  # seconds since its last use in which a build is never removed: a run may use it
DONE = ".done"  # written last: a folder without it is a build that did not finish


def compiled_names(root: Path = ROOT) -> list[str]:
    """The modules setup.py compiles, as import names."""
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    names: list[str] = pyproject["tool"]["gaggle"]["compiled"]
    return names


def _sources(root: Path) -> Iterator[Path]:
    yield root / "setup.py"
    yield root / "pyproject.toml"
    for path in sorted((root / "worker").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".so":
            yield path


def build_key(root: Path = ROOT) -> str:
    digest = hashlib.sha256()
    digest.update(f"mypy {version('mypy')} python {sys.version}".encode())
    for path in _sources(root):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def build(root: Path = ROOT, quiet: bool = True) -> Path:
    """The compiled engine's folder for ``root``'s sources, built when the cache has none.
    Raises RuntimeError with the build's output when mypyc or the C compiler fails."""
    target = CACHE / build_key(root)
    with _locked(CACHE / ".lock"):
        if (target / DONE).exists():
            os.utime(target / DONE)  # its last use: pruning leaves it alone a while
            return target
        shutil.rmtree(target, ignore_errors=True)
        with tempfile.TemporaryDirectory(prefix="gaggle-compile-") as scratch:
            source = Path(scratch) / "src"
            source.mkdir()
            for name in ("setup.py", "pyproject.toml", "README.md"):
                shutil.copy2(root / name, source / name)
            shutil.copytree(
                root / "worker", source / "worker", ignore=shutil.ignore_patterns("__pycache__")
            )
            (source / "operator").mkdir()  # the operator is not compiled, nor put in the folder
            command = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation"]
            command += ["--no-compile", "--target", str(target), str(source)]
            environment = os.environ | {"GAGGLE_COMPILE": "1"}
            done = subprocess.run(
                command, cwd=source, env=environment, capture_output=True, text=True, check=False
            )
        if done.returncode != 0:
            shutil.rmtree(target, ignore_errors=True)
            raise RuntimeError(f"the compiled build failed:\n{done.stdout[-3000:]}{done.stderr}")
        if not quiet:
            print(done.stdout[-2000:], file=sys.stderr)
        _check(target, root)
        (target / DONE).write_text(build_key(root))
        _prune(keep=target)
    return target


def _check(target: Path, root: Path) -> None:
    """Every listed module is an extension in the folder (a silent pure fallback would measure
    and test the wrong engine)."""
    missing = []
    for name in compiled_names(root):
        package, _, module = name.rpartition(".")
        if not list(target.joinpath(*package.split(".")).glob(f"{module}.*.so")):
            missing.append(name)
    if missing:
        raise RuntimeError(f"the compiled build has no extension for {missing} in {target}")


def _prune(keep: Path) -> None:
    """The newest builds but ``KEEP`` go, except those used in the last ``IN_USE`` seconds:
    another checkout's tests may be running on one (its files vanishing under a test run
    failed that run)."""
    builds = [path for path in CACHE.iterdir() if path.is_dir() and (path / DONE).exists()]
    builds.sort(key=lambda path: (path / DONE).stat().st_mtime, reverse=True)
    recently = time.time() - IN_USE
    for old in [path for path in builds if path != keep][KEEP - 1 :]:
        if (old / DONE).stat().st_mtime < recently:
            shutil.rmtree(old, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    try:
        print(build(quiet=False))
    except RuntimeError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
