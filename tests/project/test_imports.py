"""A run loads only the libraries it uses: another client's (aiohttp, pyreqwest), the web app's
(aiohttp's server, prometheus_client) and Gaggle mode's (grpc, numpy) are each ~5-16 MiB of RSS
at import, and a default run's start-up is most of what 10,000 idle users cost beyond the users.

Each case runs ``Attack(...).run(...)`` in a fresh interpreter (an import is once per process)
against the test target, and reads which of those libraries ``sys.modules`` holds at the end.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, Target

HEAVY = ("aiohttp", "pyreqwest", "prometheus_client", "numpy", "grpc")
USERS, ITERATIONS = 2, 3

CHILD = """
import io, json, sys
from rich.console import Console
from gaggle import Attack, TaskSet, task

class Front(TaskSet):
    @task
    async def index(self) -> None:
        await self.get("/")

options = json.loads(sys.argv[1])
result = Attack(Front).run(console=Console(file=io.StringIO()), **options)
print(json.dumps({
    "requests": result.metrics.aggregated_requests().count,
    "loaded": sorted(name for name in json.loads(sys.argv[2]) if name in sys.modules),
}))
"""


def run_child(target: Target, **options: object) -> dict[str, object]:
    """A run of USERS users, ITERATIONS GETs each, in its own interpreter: what it reports."""
    given = {"host": target.url, "users": USERS, "hatch_rate": USERS, "iterations": ITERATIONS}
    given |= {"no_reset_metrics": True, **options}
    command = [sys.executable, "-c", CHILD, json.dumps(given), json.dumps(HEAVY)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    reported: dict[str, object] = json.loads(result.stdout.splitlines()[-1])
    return reported


@pytest.mark.parametrize(
    ("options", "loaded"),
    [
        ({}, []),  # the default: httptools, no web app
        ({"http_client": "httptools"}, []),
        ({"http_client": "reqwest"}, ["pyreqwest"]),
        ({"http_client": "aiohttp"}, ["aiohttp"]),
        ({"metrics_bind": "127.0.0.1:0"}, ["aiohttp", "prometheus_client"]),
    ],
    ids=["default", "httptools", "reqwest", "aiohttp", "metrics-bind"],
)
def test_a_run_imports_the_client_and_web_libraries_it_uses_and_no_others(
    target: Target, options: dict[str, object], loaded: list[str]
) -> None:
    reported = run_child(target, **options)
    assert reported["requests"] == USERS * ITERATIONS
    assert target.counts()["GET / 200"] == USERS * ITERATIONS
    assert reported["loaded"] == loaded


TEST_FILE = """
from gaggle import TaskSet, task

class Front(TaskSet):
    @task
    async def index(self) -> None:
        await self.get("/")
"""
CLI_CHILD = """
import json, runpy, sys
heavy = json.loads(sys.argv.pop(1))
sys.argv[0] = "gaggle"
try:
    runpy.run_module("gaggle", run_name="__main__")
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "loaded": sorted(n for n in heavy if n in sys.modules)}))
"""


def test_gaggle_run_on_the_command_line_loads_none_of_them(target: Target, tmp_path: Path) -> None:
    """``gaggle run`` too: Gaggle mode's roles (grpc) and the demo site (aiohttp's server) are
    imported by the commands that run them."""
    test = tmp_path / "front.py"
    test.write_text(TEST_FILE)
    command = [sys.executable, "-c", CLI_CHILD, json.dumps(HEAVY), "run", str(test)]
    command += [
        "--host",
        target.url,
        "-u",
        str(USERS),
        "-r",
        str(USERS),
        "--iterations",
        str(ITERATIONS),
    ]
    command += ["--no-reset-metrics", "--no-live", "--only-summary"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)
    reported = json.loads(result.stdout.splitlines()[-1])
    assert reported["code"] in (0, None), result.stderr
    assert target.counts()["GET / 200"] == USERS * ITERATIONS
    assert reported["loaded"] == []
