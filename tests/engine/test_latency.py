"""Percentiles on known latencies: a target that sleeps known times, checked against exact
order statistics of the same run's requests log (microsecond precision)."""

from __future__ import annotations

import asyncio
import json
import math
import random
from pathlib import Path

from rich.console import Console

from gaggle import Attack, TaskSet, constant, task
from gaggle.metrics import RELATIVE_ERROR
from tests.conftest import Target


class KnownDelays(TaskSet):
    wait_time = constant(0)

    @task
    async def slow(self) -> None:
        await self.get(f"/slow?ms={random.choice((5, 10, 20, 40))}", name="slow")


def test_percentiles_are_within_the_stated_error_of_the_exact_values(
    target: Target, console: Console, tmp_path: Path, http_client: str
) -> None:
    log = tmp_path / "requests.json"
    result = asyncio.run(
        Attack(KnownDelays).run_async(
            console=console,
            http_client=http_client,
            host=target.url,
            users=20,
            hatch_rate=1000,
            run_time=2,
            no_reset_metrics=True,
            requests_file=str(log),
        )
    )
    times_us = sorted(
        round(json.loads(line)["response_time"] * 1000) for line in log.read_text().splitlines()
    )
    stats = result.metrics.requests[("GET", "slow")]
    assert stats.count == len(times_us) > 300
    assert stats.min == times_us[0] >= 5000  # nobody answered faster than the target slept
    assert stats.max_us == times_us[-1]
    assert abs(stats.mean_us - sum(times_us) / len(times_us)) < 1
    for quantile in (0.25, 0.5, 0.75, 0.9, 0.98, 0.99):
        exact = times_us[max(1, math.ceil(quantile * len(times_us))) - 1]
        assert abs(stats.percentile_us(quantile) - exact) <= RELATIVE_ERROR * exact + 1, quantile
    # The four delays show up as four steps: the median sits at or above 10 ms.
    assert stats.percentile_us(0.5) >= 10_000
