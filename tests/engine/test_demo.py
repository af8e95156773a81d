"""`make demo`'s parts: the shipped demo site, the seed's simple example against it, and the demo
itself (examples/demo.sh: examples/shop.py against the demo shop), whose report must have data in
every chart."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.conftest import ROOT, gaggle_command, run_gaggle

DEMO_RUN_TIME = "5s"  # the demo's own is 20 s; the same site, example and options otherwise
SHOP_REQUESTS = {
    "GET /sign-in",
    "POST /sign-in",
    "GET /api/products",
    "GET /api/products/{id}",
    "POST /api/cart",
    "POST /api/checkout",
    "GET /",
    "GET /static/app.css",
    "GET /api/recommendations",
    "GET /about/",
}
CHART_DATA = re.compile(r'<script type="application/json" id="gaggle-data">(.*?)</script>', re.S)


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


def run_demo(report: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "GAGGLE_PYTHON": sys.executable,
        "GAGGLE_DEMO_RUN_TIME": DEMO_RUN_TIME,
        "GAGGLE_DEMO_REPORT": str(report),
    }
    return subprocess.run(
        ["bash", "examples/demo.sh"], capture_output=True, text=True, timeout=90, env=env, cwd=ROOT
    )


def chart_data(report: Path) -> dict[str, Any]:
    """What the HTML report's charts draw: the data embedded in the page."""
    found = CHART_DATA.search(report.read_text())
    assert found, "no chart data in the report"
    data: dict[str, Any] = json.loads(found[1])
    return data


def loaded_points(timeline: dict[str, Any]) -> list[int]:
    """The first point (the hatch) and those with every user running; not the users stopping at
    the end (down to 0, a few slow checkouts in flight may finish no request in a second)."""
    users = timeline["users"]
    return sorted({0} | {i for i, n in enumerate(users) if n == max(users)})


def test_the_demo_fills_every_chart_of_its_report(tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    result = run_demo(report)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"(it needs no network): file://{report}\n" in result.stdout
    assert f"Open it in a browser: xdg-open {report}\n" in result.stdout
    assert "examples/demo.sh --web 8089" in result.stdout  # the hint at the live page
    assert "open http://127.0.0.1:8089 " in result.stdout
    data = chart_data(report)
    rows = {f"{r['method']} {r['name']}": r for r in data["requests"]}
    assert set(rows) == SHOP_REQUESTS
    # the site's deterministic failures, counted exactly: every 8th cart addition is sold out
    # (a 200 the example's body check fails), every 6th recommendation is a 503
    assert rows["POST /api/cart"]["fails"] == rows["POST /api/cart"]["count"] // 8 > 0
    assert rows["POST /api/cart"]["status_codes"] == {"200": rows["POST /api/cart"]["count"]}
    recommendations = rows["GET /api/recommendations"]
    assert recommendations["fails"] == recommendations["count"] // 6 > 0
    flaky = ("POST /api/cart", "GET /api/recommendations")
    assert all(r["fails"] == 0 for name, r in rows.items() if name not in flaky), rows
    assert data["run"]["workers"] == 0  # standalone: the users chart draws users alone

    timeline = data["timeline"]
    assert sum(timeline["requests"]) == data["requests_total"]["count"]  # the whole run
    assert sum(timeline["failures"]) == data["requests_total"]["fails"] > 0
    assert None not in timeline["users"]
    loaded = loaded_points(timeline)
    assert len(loaded) >= 3, timeline["users"]  # a point a second: the hatch, then 50 users
    for series in ("requests", "p50_ms", "p95_ms", "p99_ms"):
        empty = [i for i in loaded if not timeline[series][i]]
        assert not empty, f"{series} has no data at points {empty}: {timeline[series]}"

    by_request = timeline["by_request"]
    drawn = {f"{s['method']} {s['name']}": s for s in by_request["series"]}
    assert set(drawn) == SHOP_REQUESTS
    assert by_request["omitted"] == 0
    for name, series in drawn.items():
        for field in ("requests", "p50_ms", "p95_ms", "p99_ms"):
            assert any(series[field]), f"{name}: no {field}"
        assert sum(series["failures"]) == rows[name]["fails"], name
    slowest = max(drawn, key=lambda name: max(v for v in drawn[name]["p50_ms"] if v))
    assert slowest == "POST /api/checkout"  # the slow endpoint shows as the slow one


def test_the_quick_start_keeps_its_two_commands_and_shows_the_live_view() -> None:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Quick start")
    quick_start = readme[start : readme.index("\n## ", start)]
    block = quick_start.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.splitlines()]
    assert [c for c in commands if c] == ["make demo", "make test"]
    assert "](docs/terminal.png)" in quick_start
    shot = (ROOT / "docs" / "terminal.png").read_bytes()
    assert shot.startswith(b"\x89PNG")
    assert len(shot) < 200_000
