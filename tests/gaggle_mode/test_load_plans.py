"""Load models in Gaggle mode: the manager drives the plan (or shape) and the workers start and
stop the users it assigns; --iterations ends each worker's users. Real processes on 127.0.0.1
against the counting target: its counter equals the merged totals."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from gaggle import Attack, RunResult
from gaggle.cli.loader import load_tasksets
from gaggle.distributed.manager import Manager
from gaggle.distributed.rules import rules_hash, rules_json
from gaggle.distributed.worker_crowd import WorkerCrowd
from gaggle.options.role import Role, RoleKind
from tests.conftest import Target, finish, free_port, run_gaggle, spawn_gaggle, write_test
from tests.load.test_plans import BAD_TICK_LATER, PAGES, counted


def test_added_users_go_to_the_fewest_and_removed_come_from_the_most() -> None:
    sent: list[tuple[str, list[int], list[int]]] = []
    workers = ["w1", "w2", "w3"]
    crowd = WorkerCrowd(lambda: list(workers), lambda w, start, stop: sent.append((w, start, stop)))
    crowd.resize(5)
    assert crowd.slots == {"w1": {0, 3}, "w2": {1, 4}, "w3": {2}}
    sent.clear()
    crowd.resize(2)  # the most first (ties: the later worker), each its last started
    assert crowd.slots == {"w1": {0}, "w2": {1}, "w3": set()}
    assert sorted(sent) == [("w1", [], [3]), ("w2", [], [4]), ("w3", [], [2])]
    crowd.resize(3)  # the lowest free slot, to the worker with the fewest
    assert crowd.slots["w3"] == {2}
    workers.remove("w1")
    crowd.lose("w1")  # its user starts again on the others
    assert crowd.target == 3
    assert crowd.slots == {"w2": {0, 1}, "w3": {2}}


def gaggle_run(
    target: Target, tmp_path: Path, text: str, workers: int, **options: Any
) -> tuple[RunResult, list[Path]]:
    """A manager in this process and ``workers`` worker processes, each with a requests log."""
    test = write_test(tmp_path, text)
    tasksets = load_tasksets(test)
    port = free_port()
    plan = Attack(*tasksets).plan(
        {"host": target.url, **options}, console=Console(file=io.StringIO(), width=140)
    )
    role = Role(
        kind=RoleKind.MANAGER, expect_workers=workers, bind_host="127.0.0.1", bind_port=port
    )
    logs = [tmp_path / f"requests-{i}.json" for i in range(workers)]

    async def gaggle() -> tuple[RunResult, list[tuple[int, str]]]:
        manager = asyncio.ensure_future(
            Manager(plan, role, rules_hash(tasksets), rules_json(tasksets)).run()
        )
        await asyncio.sleep(0.3)
        processes = [
            spawn_gaggle("run", test, "--worker", "--manager-port", str(port), "-m", str(log))
            for log in logs
        ]
        result = await manager
        return result, [await asyncio.to_thread(finish, p) for p in processes]

    result, exits = asyncio.run(gaggle())
    assert [code for code, _ in exits] == [0] * workers, exits
    return result, logs


def users_in(log: Path) -> set[int]:
    return {json.loads(line)["user"] for line in log.read_text().splitlines()}


def test_a_plan_over_two_workers_counts_exactly(target: Target, tmp_path: Path) -> None:
    result, logs = gaggle_run(
        target, tmp_path, PAGES, 2, test_plan="4,0.2s;4,0.3s;1,0.3s;3,0.2s;3,0.2s;0,0.2s"
    )
    assert result.stopped_by == "the test plan is over"
    served = target.counts()
    assert counted(result) == served  # the merged totals are what the target served
    assert served["GET /start 404"] == served["GET /landing 200"] == 6  # 4 + 2 users started
    # 4 users alternate (0, 2 | 1, 3); down to 1 keeps user 0; up to 3: 1 and 2 go back where
    # they ran (to the worker with the fewest), whichever worker joined first
    assert sorted(sorted(users_in(log)) for log in logs) == [[0, 2], [1, 3]]


def test_iterations_over_two_workers_are_exact(target: Target, tmp_path: Path) -> None:
    result, _ = gaggle_run(
        target, tmp_path, PAGES, 2, users=4, hatch_rate=100, iterations=3, run_time=60
    )
    served = target.counts()
    assert served["GET / 200"] + served["GET /about/ 200"] == 24  # 4 users × 3 × 2 tasks
    assert served["GET /landing 200"] == 4
    assert counted(result) == served
    assert result.stopped_by == "every user ran its 3 iteration(s)"


def test_a_bad_tick_on_a_manager_ends_the_gaggle_with_exit_2(
    target: Target, tmp_path: Path
) -> None:
    test = write_test(tmp_path, BAD_TICK_LATER)
    result = run_gaggle("run", test, "-H", target.url, "--processes", "2", "--only-summary",
                        "--metrics-bind", f"127.0.0.1:{free_port()}", timeout=60)  # fmt: skip
    assert result.returncode == 2, result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("gaggle: error: load shape Flaky.tick("), message
    assert "returned 2 (int)" in message
    assert target.counts()["GET /landing 200"] == 2  # its users, on the workers, stopped
