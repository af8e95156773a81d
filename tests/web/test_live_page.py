"""The live web page (--web, and the metrics port) in headless Chromium against real runs: the
charts move while the run goes on, its controls change the run's users and stop it, a token is
asked for once and a wrong one refused, and where the control API is off no controls show. The
page fetches only from its own server."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from gaggle.errors import ConfigError
from gaggle.metrics.aggregate import Metrics
from gaggle.metrics.source import Source
from gaggle.options.converters import web_bind
from gaggle.report.recorder import redacted
from gaggle.web.app import Listen, serve
from tests.conftest import (
    ROOT,
    Target,
    finish,
    free_port,
    kill_leftovers,
    spawn_gaggle,
    write_test,
)
from tests.load.test_plans import PAGES
from tests.support.browser import open_page

TOKEN = "live-s3cret"

# Async probe helpers: wait (bounded) until a check holds; a failure comes back as a value.
UNTIL = """
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));
const until = async (what, check, ms = 8000) => {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const value = check();
    if (value) return value;
    await sleep(50);
  }
  throw new Error("not " + what + " within " + ms + " ms");
};
const byId = id => document.getElementById(id);
const shown = id => !byId(id).hidden && byId(id).offsetParent !== null;
const aggregated = "#tables-section table.numbers tbody tr:last-child td:nth-child(2)";
const requests = () => Number(document.querySelector(aggregated).textContent.replace(/,/g, ""));
const updates = () => Number(document.body.dataset.updates || 0);
const points = () => Number(document.body.dataset.points || 0);
"""


def probe(body: str) -> str:
    return f"""(async () => {{ {UNTIL}
  try {{ {body} }} catch (error) {{ return {{ failed: String(error) }}; }}
}})()"""


# The charts move; then the users go from 2 to 5 with the page's own controls.
MOVE_AND_STEER = probe("""
  await until("a first update", () => updates() >= 1);
  const before = { points: points(), requests: requests(), arrival: shown("control-arrival") };
  await until("points added", () => points() >= before.points + 2);
  const after = { points: points(), requests: requests() };
  const chart = window.gaggleReport.chart("chart-rps");  // zoom in on the first two points
  const zoom = { min: chart.data[0][0], max: chart.data[0][1] };
  chart.setScale("x", zoom);
  const zoomedAt = updates();
  await until("an update while zoomed", () => updates() > zoomedAt);
  const kept = { min: chart.scales.x.min, max: chart.scales.x.max, zoom,
                 points: chart.data[0].length, before: after.points };
  await until("the controls", () => shown("control-panel"));
  const started = byId("control-users").value;
  byId("control-users").value = "5";
  byId("control-hatch-rate").value = "50";
  byId("control-users-set").click();
  await until("5 users running", () => document.body.dataset.usersRunning === "5");
  return { before, after, kept, started, state: byId("control-state").textContent,
           tokenShown: shown("control-token"), charts: Number(document.body.dataset.charts) };
""")


def get_json(port: int, path: str, token: str = "", body: object = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None if body is None else json.dumps(body).encode()
    if data is not None:  # the API takes JSON alone (urllib would say a form)
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data, headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def wait_until_serving(process: subprocess.Popen[str], port: int, token: str = "") -> None:
    deadline = time.monotonic() + 15
    while True:
        assert process.poll() is None, process.communicate()[1]
        try:
            if get_json(port, "/live/report", token)[0] == 200:
                return
        except (urllib.error.URLError, OSError):  # not listening yet
            pass
        assert time.monotonic() < deadline, "the live page did not come up"
        time.sleep(0.05)


def sampled_users(port: int, users: int) -> bool:
    """Whether the live data's timeline shows ``users`` within 5 s (sampled once a second)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if users in get_json(port, "/live/report")[1]["timeline"]["users"]:
            return True
        time.sleep(0.1)
    return False


# A run's time: longer than pytest's timeout (120 s), so a run never ends under a slow step (a
# first Chromium, installed then; a loaded machine) but only when its test ends it; the bound
# ends a run whose test was killed. (A run of 40 s ended under a slow Chromium: item 10.)
RUN_TIME = "5m"


def run_live(target: Target, tmp_path: Path, *options: str) -> subprocess.Popen[str]:
    """A standalone run of 2 users, until its test stops it (or kills it, by its handle)."""
    test = write_test(tmp_path, PAGES)
    report = str(tmp_path / "report.json")
    return spawn_gaggle(
        "run", test, "--host", target.url, "-u", "2", "-r", "20", "-t", RUN_TIME, "--no-live",
        "-R", report, *options,
    )  # fmt: skip


def only_from(page_requests: list[str], port: int) -> bool:
    return all(url.startswith(f"http://127.0.0.1:{port}/") for url in page_requests)


def test_the_live_page_moves_and_its_controls_change_the_users(
    target: Target, tmp_path: Path
) -> None:
    web, metrics = free_port(), free_port()
    run = run_live(target, tmp_path, "--web", str(web), "--metrics-bind", f"127.0.0.1:{metrics}")
    try:
        wait_until_serving(run, web)
        page = open_page(f"http://127.0.0.1:{web}/", MOVE_AND_STEER)
        status, answer = get_json(metrics, "/api/status")  # the run's own word, on the other port
        sampled = sampled_users(metrics, 5)
        stopped = get_json(metrics, "/api/stop", body={"reason": "the test is done"})[0]
        code, err = finish(run)
    finally:
        kill_leftovers(run)
    value = page.value
    assert "failed" not in value, value
    assert page.errors == []
    assert page.requests
    assert only_from(page.requests, web), page.requests
    assert value["after"]["points"] > value["before"]["points"]  # the charts moved
    assert value["after"]["requests"] > value["before"]["requests"]  # and the tables
    assert value["charts"] == 4
    kept = value["kept"]
    assert (kept["min"], kept["max"]) == (kept["zoom"]["min"], kept["zoom"]["max"])  # zoom stays
    assert kept["points"] >= kept["before"]  # while the data goes on
    assert value["started"] == "2"  # the users input starts from the run's target
    assert not value["before"]["arrival"]  # no open model: no arrival rate to set
    assert not value["tokenShown"]
    assert "users 5/5" in value["state"]
    assert status == 200
    assert answer["users"] == {"target": 5, "running": 5}, answer
    assert stopped == 200
    assert code == 0, err
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["run"]["stopped_by"] == "the test is done"
    assert [c["label"] for c in data["timeline"]["changes"]][:1] == ["users 2 → 5 at 50/s"]
    assert sampled
    assert 5 in data["timeline"]["users"]
    assert "live page on http://127.0.0.1:" in err


# An open model: the page offers its arrival rate, not users, and sets it.
STEER_THE_RATE = probe("""
  await until("the controls", () => shown("control-panel") && shown("control-arrival"));
  const offered = { rate: byId("control-arrival-rate").value, users: shown("control-closed") };
  byId("control-arrival-rate").value = "40";
  byId("control-arrival-set").click();
  await until("40 arrivals a second", () => byId("control-state").textContent.includes("40/s"));
  return { offered, state: byId("control-state").textContent };
""")


def test_an_open_models_page_sets_its_arrival_rate(target: Target, tmp_path: Path) -> None:
    web = free_port()
    test = write_test(tmp_path, PAGES)
    run = spawn_gaggle("run", test, "--host", target.url, "--arrival-rate", "10", "-t", RUN_TIME,
                       "--no-live", "--web", str(web))  # fmt: skip
    try:
        wait_until_serving(run, web)
        page = open_page(f"http://127.0.0.1:{web}/", STEER_THE_RATE)
        status, answer = get_json(web, "/api/status")
        get_json(web, "/api/stop", body={"reason": "the test is done"})
        code, err = finish(run)
    finally:
        kill_leftovers(run)
    value = page.value
    assert "failed" not in value, value
    assert page.errors == []
    assert value["offered"] == {"rate": "10", "users": False}  # the run's rate; no users input
    assert "arrival rate 40/s" in value["state"]
    assert (status, answer["arrival_rate"], answer["load"]) == (200, 40, "arrival_rate")
    assert code == 0, err
    assert "control: arrival rate 10/s → 40/s" in err


def test_the_metrics_port_serves_the_live_page_and_its_data(target: Target, tmp_path: Path) -> None:
    metrics = free_port()
    run = run_live(target, tmp_path, "--metrics-bind", f"127.0.0.1:{metrics}")
    try:
        wait_until_serving(run, metrics)
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/live", timeout=5) as response:
            page = response.read().decode()
            policy = response.headers.get("Content-Type", "")
        status, data = get_json(metrics, "/live/report")
        sections = get_json(metrics, "/live/sections")[1]
        get_json(metrics, "/api/stop", body={})
        code, err = finish(run)
    finally:
        kill_leftovers(run)
    assert "text/html" in policy
    assert "connect-src 'self'" in page
    assert 'id="gaggle-live"' in page
    assert status == 200
    assert data["schema"] == "gaggle-report/1"
    assert data["run"]["host"] == target.url
    assert "<th>Updated</th>" in sections["summary"]  # not "Ended": the run goes on
    assert "<th>Updated</th>" in page
    assert "Aggregated" in sections["tables"]
    assert code == 0, err


def test_a_manager_serves_the_live_page_of_its_workers_on_its_metrics_port(
    target: Target, tmp_path: Path
) -> None:
    metrics = free_port()
    run = run_live(target, tmp_path, "--processes", "2", "--metrics-bind", f"127.0.0.1:{metrics}")
    try:
        wait_until_serving(run, metrics)
        deadline = time.monotonic() + 15
        while True:  # until the worker's requests reach the manager's timeline
            data = get_json(metrics, "/live/report")[1]
            if data["run"]["workers"] == 2 and sum(data["timeline"]["requests"]) > 0:
                break
            assert time.monotonic() < deadline, data["run"]
            time.sleep(0.1)
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/", timeout=5) as response:
            page = response.read().decode()
        run.send_signal(signal.SIGTERM)  # our own child
        code, err = finish(run, timeout=30)
    finally:
        kill_leftovers(run)
    assert data["run"]["mode"] == "gaggle (2 workers)"
    series = data["timeline"]["by_request"]["series"]
    assert {"/", "/start"} <= {s["name"] for s in series}  # the workers' requests, merged
    assert 'id="gaggle-live"' in page
    assert code == 0, err


TOKEN_AND_STOP = probe(f"""
  const first = {{ panel: shown("control-panel"), token: shown("control-token") }};
  byId("control-token-value").value = "wrong";
  byId("control-token-use").click();
  const message = () => byId("control-message").textContent;
  await until("the wrong token refused", () => message().includes("refused"));
  const refused = {{ panel: shown("control-panel"), token: shown("control-token"),
                     kept: sessionStorage.getItem("gaggle-control-token") }};
  byId("control-token-value").value = "{TOKEN}";
  byId("control-token-use").click();
  await until("the controls", () => shown("control-panel"));
  byId("control-stop").click();
  const asked = byId("control-stop").textContent;
  byId("control-stop").click();
  await until("stopping", () => message().includes("stopping"));
  return {{ first, refused, asked, kept: sessionStorage.getItem("gaggle-control-token") }};
""")


def test_with_a_token_the_page_asks_for_it_once_and_its_stop_ends_the_run(
    target: Target, tmp_path: Path
) -> None:
    web = free_port()
    run = run_live(target, tmp_path, "--web", f"127.0.0.1:{web}", "--control-token", TOKEN)
    try:
        wait_until_serving(run, web)
        page = open_page(f"http://127.0.0.1:{web}/live", TOKEN_AND_STOP)
        code, err = finish(run)
    finally:
        kill_leftovers(run)
    value = page.value
    assert "failed" not in value, value
    assert value["first"] == {"panel": False, "token": True}
    assert value["refused"] == {"panel": False, "token": True, "kept": None}
    assert value["asked"] == "Click again to stop"
    assert value["kept"] == TOKEN
    expected = ("401", "ERR_CONNECTION_REFUSED")  # the wrong token's answer; the run gone
    assert all(any(e in error for e in expected) for error in page.errors), page.errors
    assert only_from(page.requests, web), page.requests
    assert code == 0, err
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["run"]["stopped_by"] == "stopped from the live page"
    assert TOKEN not in data["run"]["command"]
    assert "--control-token REDACTED" in data["run"]["command"]


HIDDEN = probe("""
  await until("a first update", () => updates() >= 1);
  return { controls: shown("controls"), panel: shown("control-panel"),
           token: shown("control-token") };
""")


def test_beyond_loopback_without_a_token_the_page_has_no_controls(
    target: Target, tmp_path: Path
) -> None:
    web = free_port()
    run = run_live(target, tmp_path, "--web", f"0.0.0.0:{web}")
    try:
        wait_until_serving(run, web)
        page = open_page(f"http://127.0.0.1:{web}/", HIDDEN)
        refused, answer = get_json(web, "/api/users", body={"users": 9})
        users = get_json(web, "/summary")[1]["users"]
        run.send_signal(2)  # SIGINT to our own child: the API would refuse a stop
        code, err = finish(run)
    finally:
        kill_leftovers(run)
    assert page.value == {"controls": False, "panel": False, "token": False}, page.value
    assert page.errors == []
    assert only_from(page.requests, web), page.requests
    assert refused == 403
    assert "--control-token" in answer["error"]
    assert users == 2
    assert code == 0, err
    assert "control API off" in err


def test_web_takes_a_bare_port_on_loopback_or_host_and_port() -> None:
    assert web_bind("--web", "8089") == "127.0.0.1:8089"
    assert web_bind("--web", "0.0.0.0:8089") == "0.0.0.0:8089"
    assert web_bind("--web", "[::]:0") == "[::]:0"
    with pytest.raises(ConfigError, match="--web: 'eighty' is not allowed; use \\[HOST:\\]PORT"):
        web_bind("--web", "eighty")


def test_the_command_a_report_shows_hides_the_tokens() -> None:
    argv = ["gaggle", "run", "t.py", "--control-token", "a", "--gaggle-token=b", "-u", "3"]
    assert redacted(argv) == [
        *(
            "gaggle",
            "run",
            "t.py",
            "--control-token",
            "REDACTED",
            "--gaggle-token=REDACTED",
            "-u",
            "3",
        )
    ]


def test_one_address_beyond_loopback_turns_the_control_api_off_on_every_address() -> None:
    class Never:  # the API must not get as far as the controls
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"called {name}")

    async def both() -> tuple[list[int], int, int]:
        listens = [Listen("127.0.0.1:0", "--web"), Listen("0.0.0.0:0")]
        runner, ports = await serve(listens, Source(metrics=Metrics, users=int), Never())
        try:
            loop = asyncio.get_running_loop()
            asked = [
                loop.run_in_executor(None, get_json, port, "/api/users", "", {"users": 1})
                for port in ports
            ]
            (loopback, _), (everywhere, _) = await asyncio.gather(*asked)
        finally:
            await runner.cleanup()
        return ports, loopback, everywhere

    ports, loopback, everywhere = asyncio.run(both())
    assert len(set(ports)) == 2
    assert 0 not in ports
    assert loopback == everywhere == 403  # a request cannot say which address it came in on


def test_the_readme_shows_a_small_screenshot_of_the_live_page() -> None:
    shot = (ROOT / "docs" / "live-page.png").read_bytes()
    assert shot.startswith(b"\x89PNG")
    assert len(shot) < 300_000
    readme = (ROOT / "README.md").read_text()
    assert "](docs/live-page.png)" in readme
    assert "### The live web page" in readme
