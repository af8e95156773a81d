"""What the options change in the output: running metrics, summaries, logs and their levels."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from gaggle import TaskSet, constant, pacing, task
from tests.conftest import Target, run_gaggle
from tests.engine.test_cli import PLAIN, write
from tests.engine.test_engine import Plain, run


def output(console: Console) -> str:
    return console.file.getvalue()  # type: ignore[attr-defined, no-any-return]


def test_running_metrics_print_the_tables_while_running(target: Target, console: Console) -> None:
    run(Plain, console=console, host=target.url, users=2, run_time=1.4, running_metrics=0.4)
    # pre-reset tables, three running prints (0.4, 0.8, 1.2 s), the summary
    assert output(console).count("PER REQUEST METRICS") == 5


def test_only_summary_prints_the_final_tables_alone(target: Target, console: Console) -> None:
    run(Plain, console=console, host=target.url, users=2, run_time=0.5, only_summary=True)
    text = output(console)
    assert text.count("PER REQUEST METRICS") == 1
    assert text.index("resetting metrics") < text.index("PER REQUEST METRICS")


def test_no_metrics_prints_no_tables_but_still_logs_requests(
    target: Target, console: Console, tmp_path: Path
) -> None:
    log = tmp_path / "requests.json"
    result = run(
        Plain, console=console, host=target.url, users=2, run_time=0.5, no_metrics=True,
        requests_file=str(log),
    )  # fmt: skip
    assert "PER REQUEST METRICS" not in output(console)
    assert result.metrics.is_empty()
    assert len(log.read_text().splitlines()) == target.counts()["GET / 200"]


def test_no_task_metrics_leaves_out_the_task_tables(target: Target, console: Console) -> None:
    result = run(
        Plain, console=console, host=target.url, users=1, run_time=0.3, no_task_metrics=True
    )
    assert "PER TASK METRICS" not in output(console)
    assert "PER REQUEST METRICS" in output(console)
    assert result.metrics.tasks == {}


class Debugging(TaskSet):
    wait_time = constant(0.05)

    @task
    async def index(self) -> None:
        response = await self.get("/")
        self.log_debug("looked at the index", response)


def test_no_debug_body_leaves_bodies_out(
    target: Target, console: Console, tmp_path: Path, http_client: str
) -> None:
    for no_body in (False, True):
        log = tmp_path / f"debug-{no_body}.json"
        run(
            Debugging, console=console, host=target.url, users=1, run_time=0.3,
            debug_file=str(log), no_debug_body=no_body, http_client=http_client,
        )  # fmt: skip
        entry = json.loads(log.read_text().splitlines()[0])
        assert entry["tag"] == "looked at the index"
        assert entry["request"]["status_code"] == 200
        assert entry["header"]["Content-Type"].startswith("text/plain")
        assert entry["body"] == (None if no_body else "page /")


def test_log_file_and_verbosity(target: Target, tmp_path: Path) -> None:
    log = tmp_path / "gaggle.log"
    quiet = run_gaggle(
        "run", write(tmp_path, PLAIN), "--host", target.url, "-u", "2", "-r", "50", "-t", "0.5",
        "-L", str(log),
    )  # fmt: skip
    assert quiet.returncode == 0, quiet.stderr
    assert "launching user 2 from Plain" in log.read_text()
    assert "launching user" not in quiet.stderr  # the console shows warnings and worse
    loud = run_gaggle(
        "run", write(tmp_path, PLAIN), "--host", target.url, "-u", "2", "-r", "50", "-t", "0.5",
        "-v",
    )  # fmt: skip
    assert "[ INFO] launching user 2 from Plain" in loud.stderr


class Paced(TaskSet):
    wait_time = pacing(0.2)

    @task
    async def index(self) -> None:
        await self.get("/slow?ms=50")


def test_pacing_starts_tasks_at_a_fixed_interval(target: Target, console: Console) -> None:
    result = run(
        Paced, console=console, host=target.url, users=1, run_time=1.5, no_reset_metrics=True
    )
    # One task every 0.2 s whatever the 50 ms task takes: 7 or 8 in 1.5 s (not 6 as with
    # a constant 0.2 s pause after each 50 ms task).
    assert 7 <= result.metrics.tasks[(0, 0)].count <= 8


class Judged(TaskSet):
    wait_time = constant(0.02)

    @task
    async def index(self) -> None:
        response = await self.get("/")
        self.set_failure("page lacks the form", response)


def test_item9_a_set_failure_shows_its_tag_in_the_errors_table(
    target: Target, console: Console
) -> None:
    result = run(
        Judged, console=console, host=target.url, users=2, run_time=0.5, no_reset_metrics=True
    )
    failed = result.metrics.requests[("GET", "/")].fail_count
    assert failed == target.counts()["GET / 200"]
    assert result.metrics.errors == {"GET /: page lacks the form": failed}  # not "status 200"
    errors_table = output(console).split("ERRORS")[-1]
    assert "GET /: page lacks the form" in errors_table
    assert "status 200" not in errors_table
