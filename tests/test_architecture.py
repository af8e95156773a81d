"""The layout's rules: folder = import path, every module under the import contracts, nothing at
the repository's root that shadows the standard library, and no module grown past the size where
it should be split."""

from __future__ import annotations

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
    forbidden = next(c for c in contracts() if c["type"] == "forbidden")
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


def test_no_module_is_over_400_lines() -> None:
    too_long = {
        str(path.relative_to(ROOT)): n
        for root in SOURCE_ROOTS.values()
        for path in root.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > 400
    }
    assert too_long == {}


def test_only_a_manager_pays_for_numpy() -> None:
    """numpy folds the manager's deltas; a worker or standalone run must not carry its ~12 MB."""
    probe = "import sys, gaggle.cli, gaggle.distributed.worker; print('numpy' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
