"""`make demo`'s parts: the shipped demo site and the seed's simple example against it."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.conftest import ROOT, gaggle_command, run_gaggle


def test_simple_example_runs_against_the_demo_site(tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    site = subprocess.Popen(
        gaggle_command("demo-site", "--port", "0", "--port-file", str(port_file)),
        stdout=subprocess.DEVNULL,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 15
        while not port_file.exists() or not port_file.read_text():
            assert site.poll() is None
            assert time.monotonic() < deadline
            time.sleep(0.05)
        host = f"http://127.0.0.1:{port_file.read_text()}"
        result = run_gaggle(
            "run", "examples/simple.py", "--host", host, "-u", "20", "-r", "40", "-t", "1",
            "--status-codes", "--only-summary", "--no-reset-metrics",
        )  # fmt: skip
    finally:
        site.terminate()
        site.wait(timeout=10)
    assert result.returncode == 0, result.stderr
    assert "POST /login" in result.stdout
    assert "20 [200]" in result.stdout  # 20 logins, each redirected to a 200 page
