"""The layout's rules: folder = import path, every module under the import contracts, the
engine's rooms (packages) each with its job, nothing at the repository's root that shadows the
standard library, and no module grown past the size where it likely holds two concepts."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SOURCE_ROOTS = {"gaggle": ROOT / "worker", "gaggle_operator": ROOT / "operator"}


def modules(package: str) -> set[str]:
    """The package's top-level modules and subpackages (what a layer names)."""
    names = set()
    for path in (SOURCE_ROOTS[package] / package).rglob("*.py"):
        parts = path.relative_to(SOURCE_ROOTS[package] / package).with_suffix("").parts
        if parts[0] not in ("__init__", "__main__"):
            names.add(f"{package}.{parts[0]}")
    return names


def contracts() -> list[dict[str, object]]:
    result: list[dict[str, object]] = PYPROJECT["tool"]["importlinter"]["contracts"]
    return result


def layered() -> set[str]:
    names = set()
    for contract in contracts():
        if contract["type"] == "layers":
            for layer in contract["layers"]:  # type: ignore[attr-defined]
                names.update(name.strip() for name in layer.split("|"))
    return names


@pytest.mark.parametrize("package", sorted(SOURCE_ROOTS))
def test_every_module_is_placed_in_a_layer(package: str) -> None:
    assert modules(package), f"no modules found for {package}"
    assert modules(package) - layered() == set()


def test_the_whole_engine_is_forbidden_to_import_the_operator_kopf_and_kubernetes() -> None:
    forbidden = next(
        c
        for c in contracts()
        if c["type"] == "forbidden" and "gaggle_operator" in c["forbidden_modules"]  # type: ignore[operator]
    )
    assert forbidden["source_modules"] == ["gaggle"]
    assert set(forbidden["forbidden_modules"]) == {  # type: ignore[arg-type]
        "gaggle_operator",
        "kopf",
        "kubernetes",
    }


def test_source_roots_are_folders_named_as_their_imports() -> None:
    """The packages are found, not listed; each source root holds its package, nothing else."""
    find = PYPROJECT["tool"]["setuptools"]["packages"]["find"]
    assert find["where"] == ["worker", "operator"]
    for package, root in SOURCE_ROOTS.items():
        assert (root / package / "__init__.py").is_file()
        assert not (root / "__init__.py").exists(), f"{root.name}/ must not be a package"


def test_nothing_at_the_root_is_named_like_a_standard_module() -> None:
    importable = {
        path.stem if path.suffix == ".py" else path.name
        for path in ROOT.iterdir()
        if path.suffix == ".py" or (path / "__init__.py").is_file()
    }
    assert importable & set(sys.stdlib_module_names) == set()


def test_python_tools_work_from_the_root_in_a_fresh_venv(tmp_path: Path) -> None:
    """A fresh venv (no editable install preloading anything) run from the repository's root:
    `python -m pip` and `python -m pytest` import the standard library's modules, not ours."""
    base = getattr(sys, "_base_executable", sys.executable)
    venv = tmp_path / "fresh"
    subprocess.run([base, "-m", "venv", str(venv)], cwd=ROOT, check=True, capture_output=True)
    python = venv / "bin" / "python"
    # pytest from the suite's own venv, as a plain path: its .pth files (the editable install's
    # finder among them) are not run, so nothing is imported before the command's own imports
    site = Path(pytest.__file__).parent.parent
    fresh_site = next((venv / "lib").glob("python3*/site-packages"))
    (fresh_site / "suite.pth").write_text(f"{site}\n")
    for command in (["-m", "pip", "--version"], ["-m", "pytest", "--version"]):
        result = subprocess.run(
            [str(python), *command], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, (command, result.stdout + result.stderr)


# The engine's top level holds only what a load test imports: the facade, the user's DSL
# (taskset, wait, response), Attack and the errors; everything else lives in a room (a package).
TOP_LEVEL = {"__init__", "__main__", "_version", "attack", "errors", "response", "taskset", "wait"}


def test_the_engine_top_level_holds_only_the_facade_the_dsl_attack_and_errors() -> None:
    top = {path.stem for path in (SOURCE_ROOTS["gaggle"] / "gaggle").glob("*.py")}
    assert top == TOP_LEVEL


def test_every_room_of_the_engine_says_its_job_in_its_init() -> None:
    """Each package's ``__init__`` opens with the one line a newcomer reads first."""
    rooms = [path.parent for path in (SOURCE_ROOTS["gaggle"] / "gaggle").glob("*/__init__.py")]
    assert len(rooms) >= 10
    for room in rooms:
        text = (room / "__init__.py").read_text()
        assert text.startswith('"""'), room.name
        assert len(text.splitlines()[0]) > 20, room.name


# Rooms entered through their __init__, the room's interface. Not distributed/: a worker must
# not load the manager (numpy) by importing the package; not wire/ (generated) nor cli/.
INTERFACED = ("http", "kits", "load", "metrics", "options", "report", "run", "users", "web")


def test_other_rooms_and_the_operator_use_a_room_through_its_interface() -> None:
    """``from gaggle.load import pace``, never ``from gaggle.load.drive_users import pace``,
    outside ``load/``: what a room offers the others is what its ``__init__`` exports."""
    reaching_in = []
    for root in SOURCE_ROOTS.values():
        for path in root.rglob("*.py"):
            parts = path.relative_to(root).parts  # ("gaggle", room, module.py) in a room
            own = parts[1] if parts[0] == "gaggle" and len(parts) > 2 else None
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gaggle."):
                    room = node.module.split(".")[1:2]
                    if node.module.count(".") >= 2 and room[0] in INTERFACED and room[0] != own:
                        reaching_in.append(f"{path.relative_to(ROOT)}: {node.module}")
    assert reaching_in == []


def test_no_module_is_over_600_lines() -> None:
    """Modules are split by concept, not by line count (a run loop may be long and whole); past
    about 600 lines a module most likely holds two concepts."""
    too_long = {
        str(path.relative_to(ROOT)): n
        for root in SOURCE_ROOTS.values()
        for path in root.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > 600
    }
    assert too_long == {}


def test_only_a_manager_pays_for_numpy() -> None:
    """numpy folds the manager's deltas; a worker or standalone run must not carry its ~12 MB."""
    probe = "import sys, gaggle.cli, gaggle.distributed.worker; print('numpy' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
