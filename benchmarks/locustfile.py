"""The peer for ``throughput.py``: Locust's fastest user class doing what Bench does in Gaggle.

One GET of the front page per task, no pause between tasks (FastHttpUser, geventhttpclient).

When ``GAGGLE_BENCH_LOCUST_TOTALS`` names a file, Locust's final totals are written there as
JSON once every user has stopped. The stats CSV cannot serve: Locust rewrites it once a second
and does not rewrite it at shutdown, so its last second or so of requests is missing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from locust import FastHttpUser, constant, events, task
from locust.env import Environment

TOTALS_VARIABLE = "GAGGLE_BENCH_LOCUST_TOTALS"  # set by throughput.py
_environments: list[Environment] = []


class Bench(FastHttpUser):
    wait_time = constant(0)

    @task
    def index(self) -> None:
        self.client.get("/")


@events.init.add_listener
def _remember(environment: Environment, **_: Any) -> None:
    _environments.append(environment)


@events.quit.add_listener
def _write_totals(exit_code: int, **_: Any) -> None:
    """Fired after the runner stopped its users: the totals are final."""
    path = os.environ.get(TOTALS_VARIABLE)
    if not path or not _environments:
        return
    total = _environments[0].stats.total
    totals = {
        "requests": total.num_requests,
        "failures": total.num_failures,
        "start_time": total.start_time,
        "last_request_timestamp": total.last_request_timestamp,
        "exit_code": exit_code,
    }
    Path(path).write_text(json.dumps(totals))
