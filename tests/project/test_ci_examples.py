"""examples/ci: the GitHub Actions workflow passes actionlint (built from its Go module by
tests/cluster/binaries.py), the GitLab CI job passes GitLab's CI schema (the copy check-jsonschema
ships: no network), and the load test both run — their exact script, with the service's address
and a shorter run time — works against go-httpbin, the image they run as the service: three
reports on the first run, a baseline comparison on the next."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from tests.cluster import binaries
from tests.conftest import ROOT
from tests.support.httpbin import HttpBin

EXAMPLES = ROOT / "examples" / "ci"
GITHUB, GITLAB = EXAMPLES / "github-actions.yml", EXAMPLES / "gitlab-ci.yml"
HTTPBIN_IMAGE = f"mccutchen/go-httpbin:{binaries.HTTPBIN}"  # the server the tests build


def github() -> dict[str, Any]:
    workflow: dict[str, Any] = yaml.safe_load(GITHUB.read_text())
    return workflow


def gitlab_job() -> dict[str, Any]:
    job: dict[str, Any] = yaml.safe_load(GITLAB.read_text())["load-test"]
    return job


def github_load_test() -> str:
    steps = github()["jobs"]["load-test"]["steps"]
    (script,) = [step["run"] for step in steps if "gaggle run" in step.get("run", "")]
    return str(script)


def gitlab_load_test() -> str:
    (script,) = [line for line in gitlab_job()["script"] if "gaggle run" in line]
    return str(script)


def test_the_github_workflow_passes_actionlint() -> None:
    done = subprocess.run(
        [str(binaries.path("actionlint")), str(GITHUB)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_gitlab_job_passes_gitlabs_ci_schema() -> None:
    checker = Path(sys.executable).with_name("check-jsonschema")
    done = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.gitlab-ci", str(GITLAB)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_both_run_one_load_test_against_the_service_and_keep_its_json() -> None:
    assert github_load_test() == gitlab_load_test()
    job = github()["jobs"]["load-test"]
    assert job["services"]["target"]["image"] == HTTPBIN_IMAGE
    assert job["env"]["TARGET"] == "http://localhost:8080"
    steps = {step.get("uses", "").split("@")[0]: step for step in job["steps"]}
    kept, fetched = steps["actions/upload-artifact"], steps["actions/download-artifact"]
    assert kept["with"]["path"] == "report.json"
    assert kept["with"]["name"] == fetched["with"]["name"]  # the baseline is that artifact
    assert fetched["with"]["path"] == "baseline"
    assert steps["mikepenz/action-junit-report"]["with"]["report_paths"] == "junit.xml"
    assert any("report.md" in s.get("run", "") and "GITHUB_STEP_SUMMARY" in s.get("run", "")
               for s in job["steps"])  # fmt: skip
    lab = gitlab_job()
    assert lab["services"][0]["name"] == HTTPBIN_IMAGE
    assert lab["variables"]["TARGET"] == f"http://{lab['services'][0]['alias']}:8080"
    assert lab["artifacts"]["reports"]["junit"] == "junit.xml"
    assert {"report.json", "report.md", "junit.xml"} <= set(lab["artifacts"]["paths"])
    assert "raw/report.json?job=${CI_JOB_NAME}" in "\n".join(lab["before_script"])


def run_script(script: str, folder: Path, target: str) -> subprocess.CompletedProcess[str]:
    """The example's own script in bash, in a checkout-like folder, with the service's address
    and a short run time in the variables the CI files set."""
    env = {
        **os.environ,
        "TARGET": target,
        "RUN_TIME": "2s",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "COLUMNS": "140",
    }
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_the_examples_command_line_writes_three_reports_then_compares_with_its_json(
    tmp_path: Path,
) -> None:
    (tmp_path / "examples" / "ci").mkdir(parents=True)
    shutil.copy(EXAMPLES / "loadtest.py", tmp_path / "examples" / "ci" / "loadtest.py")
    script = github_load_test()
    with HttpBin() as server:
        first = run_script(script, tmp_path, server.url)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "no baseline yet" in first.stdout
        data = json.loads((tmp_path / "report.json").read_text())
        served = server.settle(at_least=sum(data["timeline"]["requests"]))
        assert sum(data["timeline"]["requests"]) == served > 0
        by_path = Counter(f"{r.method} {r.uri}" for r in server.requests)
        assert set(by_path) == {"GET /get", "GET /json", "POST /post"}
        markdown = (tmp_path / "report.md").read_text()
        assert markdown.startswith("## ✅ Passed (2 rules) · run time elapsed after ")
        cases = {c.attrib["name"]: c for c in ET.parse(tmp_path / "junit.xml").iter("testcase")}
        assert set(cases) == {"run", "failRatio < 0.01", "p95 < 500"}
        # the next run: this run's JSON is its baseline
        (tmp_path / "baseline").mkdir()
        shutil.copy(tmp_path / "report.json", tmp_path / "baseline" / "report.json")
        second = run_script(script, tmp_path, server.url)
    # a regression rule may fail on a noisy machine (exit 3); the command line itself is valid
    assert second.returncode in (0, 3), second.stdout + second.stderr
    compared = json.loads((tmp_path / "report.json").read_text())
    assert compared["baseline"]["file"] == "baseline/report.json"
    assert "### Compared with the baseline" in (tmp_path / "report.md").read_text()
    regression = [
        c.attrib["name"]
        for c in ET.parse(tmp_path / "junit.xml").iter("testcase")
        if c.attrib["classname"] == "gaggle.regression"
    ]
    assert regression == ["p95 < baseline + 20%", "failRatio <= baseline + 0.01"]
