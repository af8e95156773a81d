"""The stop timeout in Gaggle mode (review D7): each worker cancels what still runs after the
manager's --stop-timeout, its abandoned counts travel in its deltas, and the manager's totals
are their sum."""

from __future__ import annotations

from pathlib import Path

from gaggle.distributed.codec import to_delta
from gaggle.distributed.merged_tally import Totals
from gaggle.metrics.aggregate import Metrics
from tests.conftest import Target
from tests.engine.test_stopping import HANGING, SilentServer
from tests.gaggle_mode.test_load_plans import gaggle_run
from tests.support.reference_codec import from_delta


def test_d7_abandoned_counts_cross_the_wire_exactly() -> None:
    metrics = Metrics()
    metrics.abandoned_requests, metrics.abandoned_tasks = 3, 5
    delta = to_delta(metrics, 1, 0, True)
    assert from_delta(delta) == metrics
    totals = Totals()
    totals.merge(delta)
    totals.merge(to_delta(metrics, 2, 0, True))
    folded = totals.metrics()
    assert (folded.abandoned_requests, folded.abandoned_tasks) == (6, 10)


def test_d7_abandoned_requests_add_up_over_two_workers(tmp_path: Path) -> None:
    with SilentServer() as server:
        result, _ = gaggle_run(
            Target(server.port), tmp_path, HANGING, 2,
            users=4, hatch_rate=100, run_time=1, stop_timeout=1,
        )  # fmt: skip
        sent = server.received
    assert sent == 4  # a request per user, two users on each worker, none answered
    metrics = result.all_metrics()
    assert (metrics.abandoned_requests, metrics.abandoned_tasks) == (4, 4)
    assert metrics.aggregated_requests().count == 0  # abandoned: neither served nor failed
