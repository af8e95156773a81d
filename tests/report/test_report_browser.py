"""The HTML report in a real browser: headless Chromium opens it from a file:// URL, the charts
draw, nothing fails and nothing is fetched. The screenshot is kept in .build/artifacts/."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ROOT, Target, run_gaggle, write_test
from tests.support.browser import open_page

ARTIFACTS = ROOT / ".build" / "artifacts"

SHOP = """
from gaggle import TaskSet, task, constant

class Shopper(TaskSet):
    wait_time = constant(0.1)

    @task(weight=3)
    async def browse(self) -> None:
        await self.get("/a")
        await self.get("/b")

    @task
    async def broken(self) -> None:
        await self.get("/status/500")

    @task
    async def slow(self) -> None:
        await self.get("/slow?ms=30", name="/slow")
"""

# Runs in the page: what a person would see, and what the per-request controls do.
PROBE = """(() => {
  const inked = c => {
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i]) n++;
    return n;
  };
  const legend = () => document.querySelectorAll("#chart-requests .u-legend .u-series").length;
  const title = () => document.querySelector("#chart-requests .u-title").textContent;
  const result = {
    charts: Array.from(document.querySelectorAll(".chart")).map(el => el.id),
    inked: Array.from(document.querySelectorAll(".chart canvas")).map(inked),
    names: Array.from(document.querySelectorAll("#request-picker label")).map(l => l.title),
    picked: legend() - 1,
  };
  const box = document.querySelector("#request-picker input:checked");
  box.checked = false;
  box.dispatchEvent(new Event("change"));
  result.afterUnpick = legend() - 1;
  const field = document.getElementById("request-field");
  field.value = "p95_ms";
  field.dispatchEvent(new Event("change"));
  result.title = title();
  result.sections = Array.from(document.querySelectorAll("h2")).map(h => h.textContent);
  result.rows = document.querySelectorAll("table.numbers")[0].querySelectorAll("tbody tr").length;
  return result;
})()"""


def test_the_report_draws_its_charts_offline_in_chromium(target: Target, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    result = run_gaggle(
        "run", write_test(tmp_path, SHOP), "--host", target.url, "-u", "6", "-r", "6", "-t", "3",
        "-R", str(report),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    page = open_page(report.as_uri(), PROBE)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "report.png").write_bytes(page.screenshot)
    assert page.errors == []
    assert page.requests == [report.as_uri()]  # the file itself, nothing else
    value = page.value
    assert value["charts"] == ["chart-rps", "chart-latency", "chart-users", "chart-requests"]
    assert len(value["inked"]) == 4
    assert min(value["inked"]) > 2000, value["inked"]  # lines and axes, not a blank canvas
    assert sorted(value["names"]) == ["GET /a", "GET /b", "GET /slow", "GET /status/500"]
    assert value["picked"] == 3  # the busiest few, not every name at once
    assert value["afterUnpick"] == 2
    assert value["title"] == "Per request: p95 (ms)"
    sections = ["Run", "Over time", "Requests", "Tasks", "Status codes", "Errors"]
    assert value["sections"] == sections
    assert value["rows"] == 5  # four requests and the aggregate
    assert page.screenshot.startswith(b"\x89PNG")


def test_the_readme_shows_a_small_screenshot_of_a_report() -> None:
    shot = (ROOT / "docs" / "report.png").read_bytes()
    assert shot.startswith(b"\x89PNG")
    assert len(shot) < 200_000
    assert "](docs/report.png)" in (ROOT / "README.md").read_text()


# Pixels of the stage lines' gold (#c9a227) in each chart.
GOLD = """(() => Array.from(document.querySelectorAll(".chart canvas")).map(c => {
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (Math.abs(d[i] - 201) < 25 && Math.abs(d[i + 1] - 162) < 25 && d[i + 2] < 90) n++;
  }
  return n;
}))()"""


def test_the_report_draws_a_line_where_each_stage_began(target: Target, tmp_path: Path) -> None:
    report, plain = tmp_path / "report.html", tmp_path / "plain.html"
    test = write_test(tmp_path, SHOP)
    staged = run_gaggle("run", test, "--host", target.url, "--test-plan", "2,1s;2,1s;0,0.5s",
                        "-R", str(report))  # fmt: skip
    steady = run_gaggle("run", test, "--host", target.url, "-u", "2", "-r", "2", "-t", "2.5",
                        "-R", str(plain))  # fmt: skip
    assert staged.returncode == steady.returncode == 0, staged.stderr + steady.stderr
    page = open_page(report.as_uri(), GOLD)
    assert page.errors == []
    assert min(page.value[:3]) > 20, page.value  # three stage lines across each chart
    assert open_page(plain.as_uri(), GOLD).value[:3] == [0, 0, 0]  # and none without a plan
