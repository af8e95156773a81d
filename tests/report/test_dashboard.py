"""The Grafana dashboard against a real Prometheus: every panel's query returns data from a real
gaggle (a manager and two workers), its variables list the run's namespace, LoadTest and run, and
its annotation marks the run's start."""

from __future__ import annotations

import json
import re
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.conftest import ROOT, Target, finish, free_port, spawn_gaggle, write_test
from tests.support.prometheus import label_values, query, running_prometheus

DASHBOARD = ROOT / "charts" / "gaggle" / "dashboards" / "gaggle.json"
COPY = ROOT / "deploy" / "dashboards" / "gaggle.json"
# What a Kubernetes pod monitor adds to the manager's metrics (the chart's monitors relabel the
# manager pod's gaggle.dev/loadtest and gaggle.dev/run labels); here static scrape labels.
LABELS = {"namespace": "loadtests", "loadtest": "shop", "run": "7"}
FILTER = 'namespace="$namespace", loadtest="$loadtest", run=~"$run"'
RATE_WINDOW = "10s"  # stands for Grafana's $__rate_interval: ten 1 s scrapes
SCRAPES_BEFORE_ASKING = 6

STEADY = """
from gaggle import TaskSet, task, constant

class Shopper(TaskSet):
    wait_time = constant(0.1)

    @task(weight=3)
    async def browse(self) -> None:
        await self.get("/a")

    @task
    async def broken(self) -> None:
        await self.get("/status/500")
"""


def load() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def substituted(expr: str) -> str:
    """PromQL with the dashboard's variables as Grafana fills them for our labels."""
    expr = expr.replace("$__rate_interval", RATE_WINDOW)
    for name, value in LABELS.items():
        expr = expr.replace(f"${name}", value)
    return expr


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL with the dashboard's variables substituted) for every target."""
    return [
        (panel["title"], substituted(target["expr"]))
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]


def variable(dashboard: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(v for v in dashboard["templating"]["list"] if v["name"] == name)
    return found


def test_the_chart_and_deploy_copies_are_the_same_file() -> None:
    assert COPY.read_bytes() == DASHBOARD.read_bytes()


def test_every_panel_queries_and_filters_by_the_variables() -> None:
    dashboard = load()
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "namespace", "loadtest", "run"} <= variables
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert FILTER in target["expr"], panel["title"]
    # a run selector of several runs, or all of them (a regex: a series without `run` matches)
    run = variable(dashboard, "run")
    assert (run["multi"], run["includeAll"], run["allValue"]) == (True, True, ".*")
    (start,) = dashboard["annotations"]["list"]
    assert FILTER in start["expr"]
    assert start["useValueForTime"] is True  # the series' value is the instant to mark


def wait_for_scrapes(base: str, count: int, timeout: float = 45) -> None:
    """Until Prometheus has scraped the gaggle ``count`` times (the first takes 5-10 s)."""
    deadline = time.monotonic() + timeout
    expr = 'count_over_time(up{job="gaggle"}[1m]) and up{job="gaggle"} == 1'
    while True:
        result = query(base, expr)
        if result and float(result[0]["value"][1]) >= count:
            return
        assert time.monotonic() < deadline, f"fewer than {count} scrapes: {result}"
        time.sleep(0.5)


def test_every_panel_returns_data_from_a_real_prometheus(target: Target, tmp_path: Path) -> None:
    metrics_port = free_port()
    began = time.time()
    gaggle = spawn_gaggle(
        "run", write_test(tmp_path, STEADY), "--host", target.url, "--processes", "2",
        "-u", "4", "-r", "20", "-t", "60", "--metrics-bind", f"127.0.0.1:{metrics_port}",
    )  # fmt: skip
    try:
        with running_prometheus(tmp_path, f"127.0.0.1:{metrics_port}", LABELS) as prometheus:
            wait_for_scrapes(prometheus, SCRAPES_BEFORE_ASKING)
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as page:
                exported = page.read().decode()
            dashboard = load()
            queried = [dashboard["panels"], dashboard["annotations"], dashboard["templating"]]
            named = set(re.findall(r"\bgaggle_[a-z_]+", json.dumps(queried)))
            missing = {m for m in named if not re.search(rf"^{m}[{{ ]", exported, re.M)}
            assert missing == set()  # a panel naming a metric we do not export
            empty = [(t, e) for t, e in panel_queries(dashboard) if not query(prometheus, e)]
            assert empty == []
            assert label_values(prometheus, "namespace", "gaggle_users") == ["loadtests"]
            loadtests = 'gaggle_users{namespace="loadtests"}'
            assert label_values(prometheus, "loadtest", loadtests) == ["shop"]
            definition = variable(dashboard, "run")["definition"]
            runs = re.fullmatch(r"label_values\((.+), run\)", definition)
            assert runs is not None
            assert label_values(prometheus, "run", substituted(runs.group(1))) == ["7"]
            # the run's start, once, at the instant the gaggle began (Grafana's useValueForTime
            # takes the value, in ms, as the annotation's time)
            (start,) = dashboard["annotations"]["list"]
            (marked,) = query(prometheus, substituted(start["expr"]))
            assert marked["metric"] == {"run": "7"}
            assert began <= float(marked["value"][1]) / 1000 <= time.time()
    finally:
        if gaggle.poll() is None:
            gaggle.send_signal(signal.SIGTERM)
        code, err = finish(gaggle, timeout=30)
    assert code == 0, err
