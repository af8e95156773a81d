"""Releasing: the image's build command and the release workflow (finding 6 of the operator
review: the default image must exist, and users must be able to build their own)."""

from __future__ import annotations

import subprocess

import yaml

from gaggle._version import __version__
from tests.cluster import binaries
from tests.conftest import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"


def test_the_workflows_pass_actionlint() -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert files, "no workflow"
    done = subprocess.run(
        [str(binaries.path("actionlint")), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_version_tag_pushes_the_multi_arch_image_and_the_chart_after_the_tests() -> None:
    workflow = yaml.safe_load((WORKFLOWS / "release.yml").read_text())
    assert workflow[True]["push"]["tags"] == ["v*"]  # YAML reads the key `on` as True
    jobs = workflow["jobs"]
    assert "bash .ci/run" in str(jobs["test"]["steps"])
    build = next(s for s in jobs["image"]["steps"] if "build-push-action" in s.get("uses", ""))
    assert build["with"]["platforms"] == "linux/amd64,linux/arm64"
    assert build["with"]["push"] is True
    assert jobs["image"]["needs"] == "test"
    assert jobs["chart"]["needs"] == "image"
    assert "helm push" in str(jobs["chart"]["steps"])


def test_make_image_tags_the_image_as_the_chart_deploys_it() -> None:
    done = subprocess.run(["make", "-s", "-n", "image"], capture_output=True, text=True, cwd=ROOT)
    # the last line: make may first print the .venv's install when pyproject.toml is newer
    build = done.stdout.strip().splitlines()[-1]
    assert build == f".venv/bin/python tools/image.py --tag ghcr.io/gaggle-dev/gaggle:{__version__}"
    chart = yaml.safe_load((ROOT / "charts" / "gaggle" / "Chart.yaml").read_text())
    values = yaml.safe_load((ROOT / "charts" / "gaggle" / "values.yaml").read_text())
    assert chart["appVersion"] == __version__
    assert values["image"]["repository"].endswith("gaggle-dev/gaggle")
