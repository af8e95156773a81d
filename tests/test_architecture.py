"""The layout's rules: every engine module is under the import contracts, packaging covers every
folder, and no module grows past the size where it should be split."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from tests.conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def engine_modules() -> set[str]:
    names = set()
    for path in (ROOT / "worker").rglob("*.py"):
        parts = path.relative_to(ROOT / "worker").with_suffix("").parts
        if parts[0] in ("__init__", "__main__"):
            continue
        names.add("gaggle." + parts[0])
    return names


def contracts() -> list[dict[str, object]]:
    result: list[dict[str, object]] = PYPROJECT["tool"]["importlinter"]["contracts"]
    return result


def test_every_engine_module_is_placed_in_a_layer() -> None:
    layered = set()
    for contract in contracts():
        if contract["type"] == "layers":
            for layer in contract["layers"]:  # type: ignore[attr-defined]
                layered.update(name.strip() for name in layer.replace(":", "|").split("|"))
    assert engine_modules() - layered == set()


def test_every_engine_module_is_forbidden_to_import_the_operator() -> None:
    forbidden = next(c for c in contracts() if c["type"] == "forbidden")
    assert engine_modules() - set(forbidden["source_modules"]) == set()  # type: ignore[arg-type]
    assert "gaggle.operator" in forbidden["forbidden_modules"]  # type: ignore[operator]


def test_packaging_lists_every_package_folder() -> None:
    setuptools = PYPROJECT["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    mapping = setuptools["package-dir"]
    found = set()
    for package, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((package, *relative)))
    assert found == listed


def test_no_module_is_over_400_lines() -> None:
    too_long = {
        str(path.relative_to(ROOT)): n
        for folder in ("worker", "operator")
        for path in (ROOT / folder).rglob("*.py")
        if (n := len(path.read_text().splitlines())) > 400
    }
    assert too_long == {}


def test_only_a_manager_pays_for_numpy() -> None:
    """numpy folds the manager's deltas; a worker or standalone run must not carry its ~12 MB."""
    probe = "import sys, gaggle.cli, gaggle.distributed.worker; print('numpy' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
