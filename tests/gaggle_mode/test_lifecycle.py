"""The run lifecycle in Gaggle mode: one owner of the numbers (a worker's own /metrics reads them
without taking them from the manager), and a manager's second Ctrl-C exiting at once, as a
standalone run's does."""

from __future__ import annotations

import asyncio
import contextlib
import io
import signal
import time
from pathlib import Path

from rich.console import Console

from gaggle import Attack
from gaggle.cli.loader import load_tasksets
from gaggle.distributed.manager import Manager
from gaggle.distributed.rules import rules_hash, rules_json
from gaggle.options.role import Role, RoleKind
from tests.conftest import (
    Target,
    finish,
    free_port,
    kill_leftovers,
    scrape,
    spawn_gaggle,
    wait_for_count,
    write_test,
)
from tests.engine.test_cli import HANGING_STOP, PLAIN


def requests_total(page: str) -> float:
    """The sum of ``gaggle_requests_total`` over its label sets on a /metrics page."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in page.splitlines()
        if line.startswith("gaggle_requests_total{")
    )


def test_a_worker_scraped_for_its_own_metrics_still_ships_every_request(
    target: Target, tmp_path: Path
) -> None:
    test = write_test(tmp_path, PLAIN)
    tasksets = load_tasksets(test)
    port, worker_metrics = free_port(), free_port()
    options = {"host": target.url, "users": 4, "hatch_rate": 100, "run_time": 3}
    plan = Attack(*tasksets).plan(options, console=Console(file=io.StringIO(), width=140))
    role = Role(kind=RoleKind.MANAGER, expect_workers=2, bind_host="127.0.0.1", bind_port=port)
    scraped: list[float] = []

    async def scrape_until(done: asyncio.Future[object]) -> None:
        while not done.done():
            with contextlib.suppress(OSError):  # not listening yet, or gone
                scraped.append(requests_total(await asyncio.to_thread(scrape, worker_metrics)))
            await asyncio.sleep(0.5)

    async def gaggle() -> tuple[object, list[tuple[int, str]]]:
        manager = asyncio.ensure_future(
            Manager(plan, role, rules_hash(tasksets), rules_json(tasksets)).run()
        )
        await asyncio.sleep(0.3)
        bind = f"127.0.0.1:{worker_metrics}"
        workers = [
            spawn_gaggle("run", test, "--worker", "--manager-port", str(port), *extra)
            for extra in (("--metrics-bind", bind), ())
        ]
        try:
            await scrape_until(manager)
            result = await manager
            return result, [await asyncio.to_thread(finish, w) for w in workers]
        finally:
            kill_leftovers(*workers)

    result, exits = asyncio.run(gaggle())
    assert [code for code, _ in exits] == [0, 0], exits
    assert len(scraped) >= 3, scraped
    assert max(scraped) > 0, scraped  # the worker's own page had its counts
    served = target.counts()["GET / 200"]
    counted = result.all_metrics().requests[("GET", "/")].count  # type: ignore[attr-defined]
    assert counted == served > 100


def test_a_second_ctrl_c_on_the_manager_exits_at_once(target: Target, tmp_path: Path) -> None:
    test, port = write_test(tmp_path, HANGING_STOP), free_port()
    manager = spawn_gaggle(
        "run", test, "--manager", "--expect-workers", "1", "--manager-bind-host", "127.0.0.1",
        "--manager-bind-port", str(port), "--host", target.url, "-u", "2", "-r", "100",
        "--metrics-bind", f"127.0.0.1:{free_port()}",
    )  # fmt: skip
    worker = None
    try:
        time.sleep(0.5)
        worker = spawn_gaggle("run", test, "--worker", "--manager-port", str(port))
        wait_for_count(target, "GET / 200", 10)
        manager.send_signal(signal.SIGINT)
        time.sleep(1.0)  # the worker's users are now in their 60 s on_stop task
        assert manager.poll() is None, "the first Ctrl-C waits for the users to stop"
        manager.send_signal(signal.SIGINT)
        code, err = finish(manager, timeout=15)
        assert code == 130, err
        assert "exiting now" in err
        worker_code, worker_err = finish(worker, timeout=15)  # it lost its manager: it stops
        assert worker_code == 1, worker_err
    finally:
        kill_leftovers(manager, worker)
