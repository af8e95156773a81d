"""Prometheus metrics and a JSON summary, read from the run's totals.

Nothing is counted twice: a scrape reads the same totals the tables print (on the manager, the
merge of all workers' deltas), so ``gaggle_requests_total`` equals the summary's counts: the
request families as what arrived since the previous scrape, added to what the page kept
(``request_series``), the rest from the totals. Counters include the hatching phase, so they
never go down at the reset. Labels come from the test's request names, whose default is the
path: ids in paths would make a series set per id, so only the busiest
``--request-names-limit`` names get their own and the rest are summed under
``name="(other names)"``: a scrape stays bounded.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from gaggle.metrics import (
    OTHER_NAMES,
    Metrics,
    Source,
    Stats,
    bucket_bounds,
    task_label,
)
from gaggle.web.control_api import CHANGES
from gaggle.web.request_series import RequestSeries

# Upper bounds in seconds of the exported latency buckets (Prometheus needs fixed ones).
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)


# Upper bounds in seconds of the schedule lag's buckets: on time is well under a millisecond.
LAG_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0)


def cumulative_buckets(
    stats: Stats, bounds: tuple[float, ...] = LATENCY_BUCKETS
) -> list[tuple[str, float]]:
    """Our fine histogram folded into Prometheus's fixed buckets (a bucket counts toward a
    bound when its highest value is within it: exact up to our 0.4% resolution)."""
    bounds_us = [int(bound * 1_000_000) for bound in bounds]
    counts = [0] * len(bounds_us)
    for index, count in stats.histogram.items():
        high = bucket_bounds(index)[1]
        for position, bound in enumerate(bounds_us):
            if high <= bound:
                counts[position] += count
                break
    running, buckets = 0, []
    for seconds, count in zip(bounds, counts, strict=True):
        running += count
        buckets.append((repr(seconds), float(running)))
    buckets.append(("+Inf", float(stats.histogram.total)))
    return buckets


class MetricsPage:
    """/metrics: the request families, kept from the run's feed (``RequestSeries``), then the
    collector's; the same ``Source`` the tables and /summary read."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.requests = RequestSeries(source.feed, LATENCY_BUCKETS)
        self.registry = CollectorRegistry()
        self.registry.register(GaggleCollector(source))

    def render(self) -> bytes:
        self.requests.update()
        text = self.requests.text(self.source.names_limit, OTHER_NAMES)
        return text.encode() + generate_latest(self.registry)


class GaggleCollector(Collector):
    def __init__(self, source: Source) -> None:
        self.source = source
        self.started = time.time()  # the page comes up with the run (a LoadTest: a pod a run)

    def collect(self) -> Iterator[Metric]:
        """The page's families but the request ones (``MetricsPage`` writes those)."""
        metrics = self.source.counted()
        tasks = CounterMetricFamily(
            "gaggle_tasks", "Task runs.", labels=["taskset", "task", "result"]
        )
        names = self.source.task_names()
        for key, stats in sorted(metrics.tasks.items()):
            taskset, label = task_label(names, key)
            tasks.add_metric([taskset, label, "success"], stats.success_count)
            tasks.add_metric([taskset, label, "failure"], stats.fail_count)
        connected, lost = self.source.workers()
        yield tasks
        users = self.source.users()
        yield GaugeMetricFamily("gaggle_users", "Users running.", value=users)
        target = self.source.users_target
        yield GaugeMetricFamily(
            "gaggle_users_target",
            "Users the load asks for now (-u, or a test plan's or load shape's current stage).",
            value=target() if target is not None else users,
        )
        yield GaugeMetricFamily("gaggle_workers_connected", "Workers connected.", value=connected)
        yield CounterMetricFamily("gaggle_workers_lost", "Workers lost mid-run.", value=lost)
        lag = GaugeMetricFamily(
            "gaggle_worker_loop_lag_seconds",
            "How late a worker's event loop ran its timers, at worst in the last 2 s (a busy "
            "loop, not a dead one).",
            labels=["worker"],
        )
        for worker, seconds in sorted(self.source.loop_lags().items()):
            lag.add_metric([str(worker)], seconds)
        yield lag
        yield GaugeMetricFamily(
            "gaggle_loop_lag_seconds",
            "How late this process's event loop ran its timers, at worst in the last 2 s (a task "
            "that blocks the loop, or a saturated CPU).",
            value=self.source.loop_lag(),
        )
        changes = CounterMetricFamily(
            "gaggle_control_changes",
            "Changes made to the running test through the control API.",
            labels=["what"],
        )
        made = Counter(what for _, what, _ in self.source.changes())
        for what in CHANGES:
            changes.add_metric([what], made[what])
        yield changes
        yield from schedule_families(metrics, self.source.arrival_rate())
        abandoned = CounterMetricFamily(
            "gaggle_abandoned",
            "What --stop-timeout cancelled while it still ran: requests in flight, tasks.",
            labels=["what"],
        )
        abandoned.add_metric(["request"], metrics.abandoned_requests)
        abandoned.add_metric(["task"], metrics.abandoned_tasks)
        yield abandoned
        yield GaugeMetricFamily(
            "gaggle_run_start_time_seconds",
            "Unix time the run began serving its metrics (a dashboard's run-start annotation).",
            value=self.started,
        )


def schedule_families(metrics: Metrics, arrival_rate: float) -> Iterator[Metric]:
    """The open model's figures: the rate asked for, the drops, and how late starts began."""
    yield GaugeMetricFamily(
        "gaggle_arrival_rate",
        "Arrivals per second the open model's schedule asks for now (0: a closed model).",
        value=arrival_rate,
    )
    yield CounterMetricFamily(
        "gaggle_arrivals_dropped",
        "Arrivals that came due when no user was free (--max-users reached).",
        value=metrics.dropped,
    )
    lag = HistogramMetricFamily(
        "gaggle_schedule_lag_seconds",
        "How late each scheduled start (arrival, paced task) began after its instant.",
    )
    lag.add_metric([], cumulative_buckets(metrics.lag, LAG_BUCKETS), metrics.lag.sum_us / 1e6)
    yield lag


def summary(source: Source) -> dict[str, Any]:
    """/summary's document as data (tests, small runs: ``summary_body`` is what is served)."""
    result: dict[str, Any] = json.loads(summary_body(source))
    return result


def summary_body(source: Source) -> bytes:
    """/summary: the run's totals with every request row's mergeable histogram. The rows are
    written as JSON one at a time, never held as data all at once: with 100,000 names the
    document as dicts took ~70 MB of a manager's peak; its text is a fraction of that. Made in
    one go, so every row is of the same instant."""
    metrics = source.metrics()
    connected, lost = source.workers()
    head = json.dumps(
        {
            "users": source.users(),
            "workers": {"connected": connected, "lost": lost},
            "task_names": source.task_names(),
        }
    )
    rest = metrics.to_dict(requests=False)
    del rest["requests"]
    rows = ", ".join(json.dumps(row) for row in metrics.request_rows())
    return f'{head[:-1]}, "requests": [{rows}], {json.dumps(rest)[1:]}'.encode()


def add_metrics_routes(app: web.Application, source: Source) -> None:
    """``/metrics`` (Prometheus text) and ``/summary`` (JSON), open to anyone who can connect."""
    page = MetricsPage(source)

    async def metrics_page(request: web.Request) -> web.Response:
        body = page.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def summary_page(request: web.Request) -> web.Response:
        return web.Response(body=summary_body(source), content_type="application/json")

    app.router.add_get("/metrics", metrics_page)
    app.router.add_get("/summary", summary_page)
