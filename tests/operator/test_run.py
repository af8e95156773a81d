"""``gaggle-operator run`` without a cluster: its refusals, and a health endpoint that answers
on every address of both families (findings 22 and 25; the Lease itself is proven on the test
cluster in test_operator_hardening.py)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request

import pytest

from gaggle_operator.lease import Election
from gaggle_operator.run import serve_health
from tests.conftest import ROOT, free_port


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ([], "one of the arguments -A/--all-namespaces -n/--namespace is required"),
        (["-A", "-n", "x"], "not allowed with argument"),
        (["-A", "--lease-seconds", "1"], "--lease-seconds 1.0: use 3 seconds or more"),
        (["-A", "--health-port", "70000"], "--health-port 70000: use a port, 0..65535"),
        (["-A"], "--lease-namespace: not in a pod and $POD_NAMESPACE unset: name one"),
    ],
)
def test_bad_run_flags_exit_2_naming_the_flag(args: list[str], words: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{ROOT / 'worker'}:{ROOT / 'operator'}"}
    done = subprocess.run(
        [sys.executable, "-m", "gaggle_operator", "run", *args],
        capture_output=True, text=True, timeout=60, env=env, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert words in done.stderr


def read(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as page:
        body: bytes = page.read()
        return body


def test_the_health_endpoint_answers_on_ipv4_and_ipv6() -> None:
    port = free_port()
    election = Election("ns", "gaggle-operator", "pod-a")

    async def probe() -> list[dict[str, object]]:
        runner = await serve_health(port, election)
        assert runner is not None
        try:
            answers = []
            for host in ("127.0.0.1", "[::1]"):
                url = f"http://{host}:{port}/healthz"
                body = await asyncio.to_thread(
                    lambda u=url: urllib.request.urlopen(u, timeout=5).read()
                )
                answers.append(json.loads(body))
            return answers
        finally:
            await runner.cleanup()

    assert asyncio.run(probe()) == [{"leader": False, "identity": "pod-a"}] * 2
