"""Metrics of a run, and the aggregator that the hot path writes into.

The hot path only calls ``record_request`` / ``record_task`` (one dict lookup and a few integer
updates). One reader, the ``Ledger`` (``metrics/ledger.py``), calls ``drain()`` to take what
accumulated since the last call — a *delta* — and fans it out: into the run's totals that the
tables, /metrics and the report read, and on a worker into the next delta it ships to its
manager. Merging is exact (integer sums), so a manager's totals equal one aggregator's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

from gaggle.metrics.record import RequestRecord, TaskRecord
from gaggle.metrics.stats import Stats

RequestKey = tuple[str, str]  # (method, name)
TaskKey = tuple[int, int]  # (task set index, task index)
# (task set name, its tasks' names), in definition order: what a TaskKey's indexes point into
TaskNames = list[tuple[str, list[str]]]
K = TypeVar("K", RequestKey, TaskKey)

# A distinct error is counted, not stored per occurrence: reports stay small (locust#1712).
MAX_DISTINCT_ERRORS = 1000
OTHER_ERRORS = "(other errors)"


def request_order(row: tuple[RequestKey, Any]) -> tuple[str, str]:
    """How every table, report and summary orders request rows: by name, then method."""
    (method, name), _ = row
    return name, method


def task_label(names: TaskNames, key: TaskKey) -> tuple[str, str]:
    """A task row's (task set, task) names; the indexes as text where ``names`` has none."""
    taskset, task = key
    if taskset >= len(names):
        return str(taskset), str(task)
    tasks = names[taskset][1]
    return names[taskset][0], tasks[task] if task < len(tasks) else str(task)


class Metrics:
    """Per-request and per-task stats plus error counts; a delta or a total alike.

    ``lag`` times how late each scheduled start began (an open model's arrival, a paced task)
    and ``dropped`` counts the arrivals that found no free user: scheduled = started + dropped.
    ``abandoned_requests`` and ``abandoned_tasks``: what was still running when the stop timeout
    cancelled it (a request in flight, a task or on_start); neither a success nor a failure.
    """

    __slots__ = (
        "abandoned_requests",
        "abandoned_tasks",
        "dropped",
        "errors",
        "lag",
        "requests",
        "tasks",
    )

    def __init__(self) -> None:
        self.requests: dict[RequestKey, Stats] = {}
        self.tasks: dict[TaskKey, Stats] = {}
        self.errors: dict[str, int] = {}
        self.lag = Stats()
        self.dropped = 0
        self.abandoned_requests = 0
        self.abandoned_tasks = 0

    def merge(self, other: Metrics, *, requests: bool = True) -> None:
        """``other`` added in (``requests=False``: all but its request rows)."""
        if requests:
            merge_rows(self.requests, other.requests)
        merge_rows(self.tasks, other.tasks)
        for error, count in other.errors.items():
            add_error(self.errors, error, count)
        self.lag.merge(other.lag)
        self.dropped += other.dropped
        self.abandoned_requests += other.abandoned_requests
        self.abandoned_tasks += other.abandoned_tasks

    @property
    def scheduled(self) -> int:
        """Scheduled starts that came due: those that began (lag timed) and those dropped."""
        return self.lag.timed_count + self.dropped

    @classmethod
    def combined(cls, *parts: Metrics | None) -> Metrics:
        """A new Metrics holding all ``parts`` (None skipped): e.g. hatching phase + measured."""
        total = cls()
        for part in parts:
            if part is not None:
                total.merge(part)
        return total

    def is_empty(self) -> bool:
        return not (
            self.requests
            or self.tasks
            or self.errors
            or self.scheduled
            or self.abandoned_requests
            or self.abandoned_tasks
        )

    def aggregated_requests(self) -> Stats:
        total = Stats()
        for stats in self.requests.values():
            total.merge(stats)
        return total

    def aggregated_tasks(self) -> Stats:
        total = Stats()
        for stats in self.tasks.values():
            total.merge(stats)
        return total

    def request_rows(self) -> Iterator[dict[str, Any]]:
        """``to_dict``'s request rows, one at a time (100,000 names: don't hold them all)."""
        for (method, name), stats in sorted(self.requests.items(), key=request_order):
            yield {"method": method, "name": name, **stats.to_dict()}

    def to_dict(self, *, requests: bool = True) -> dict[str, Any]:
        """Everything as JSON-ready data (``requests=False``: its request rows left empty)."""
        return {
            "requests": list(self.request_rows()) if requests else [],
            "tasks": [
                {"taskset": t, "task": i, **s.to_dict()} for (t, i), s in sorted(self.tasks.items())
            ],
            "errors": dict(sorted(self.errors.items(), key=lambda kv: (-kv[1], kv[0]))),
            "schedule": {"dropped": self.dropped, "lag": self.lag.to_dict()},
            "abandoned": {"requests": self.abandoned_requests, "tasks": self.abandoned_tasks},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Metrics:
        metrics = cls()
        for row in data["requests"]:
            metrics.requests[(row["method"], row["name"])] = Stats.from_dict(row)
        for row in data["tasks"]:
            metrics.tasks[(int(row["taskset"]), int(row["task"]))] = Stats.from_dict(row)
        metrics.errors = {str(k): int(v) for k, v in data["errors"].items()}
        schedule = data.get("schedule")  # absent from a summary of an older gaggle
        if schedule is not None:
            metrics.dropped = int(schedule["dropped"])
            metrics.lag = Stats.from_dict(schedule["lag"])
        abandoned = data.get("abandoned")  # absent from a summary of an older gaggle
        if abandoned is not None:
            metrics.abandoned_requests = int(abandoned["requests"])
            metrics.abandoned_tasks = int(abandoned["tasks"])
        return metrics

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Metrics):
            return NotImplemented
        return self.to_dict() == other.to_dict()


def merge_rows(mine: dict[K, Stats], theirs: dict[K, Stats]) -> None:
    for key, stats in theirs.items():
        row = mine.get(key)
        if row is None:
            mine[key] = stats.copy()
        else:
            row.merge(stats)


def add_error(errors: dict[str, int], error: str, count: int = 1) -> None:
    if error not in errors and len(errors) >= MAX_DISTINCT_ERRORS:
        error = OTHER_ERRORS
    errors[error] = errors.get(error, 0) + count


def request_error_key(record: RequestRecord) -> str:
    reason = record.error or f"status {record.status_code}"
    return f"{record.method} {record.name}: {reason}"


class Aggregator:
    """Where users' records land. ``drain()`` hands over the delta since the last drain."""

    __slots__ = ("_pending", "track_tasks")

    def __init__(self, *, track_tasks: bool = True) -> None:
        self._pending = Metrics()
        self.track_tasks = track_tasks

    def record_request(self, record: RequestRecord) -> None:
        key = (record.method, record.name)
        stats = self._pending.requests.get(key)
        if stats is None:
            stats = self._pending.requests[key] = Stats()
        stats.record(record.response_time_us, record.success, record.status_code)
        if not record.success:
            add_error(self._pending.errors, request_error_key(record))

    def flip_request(self, record: RequestRecord) -> None:
        """``record`` is the new verdict of a request recorded earlier, maybe in a past delta."""
        key = (record.method, record.name)
        stats = self._pending.requests.get(key)
        if stats is None:
            stats = self._pending.requests[key] = Stats()
        stats.flip(record.success)
        if not record.success:
            add_error(self._pending.errors, request_error_key(record))

    def record_task(self, record: TaskRecord) -> None:
        if not self.track_tasks:
            return
        key = (record.taskset_index, record.task_index)
        stats = self._pending.tasks.get(key)
        if stats is None:
            stats = self._pending.tasks[key] = Stats()
        stats.record(record.run_time_us, record.success)

    def record_error(self, error: str) -> None:
        add_error(self._pending.errors, error)

    def record_lag(self, lag_us: int) -> None:
        """A scheduled start began ``lag_us`` after its instant."""
        self._pending.lag.record(lag_us, True)

    def record_dropped(self) -> None:
        """An arrival came due and found no free user."""
        self._pending.dropped += 1

    def record_abandoned(self, *, request: bool) -> None:
        """The stop timeout cancelled a request in flight (``request``), or a running task."""
        if request:
            self._pending.abandoned_requests += 1
        else:
            self._pending.abandoned_tasks += 1

    def drain(self) -> Metrics:
        delta, self._pending = self._pending, Metrics()
        return delta


class NullAggregator(Aggregator):
    """``--no-metrics``: records go nowhere (the logs still get them)."""

    __slots__ = ()

    def record_request(self, record: RequestRecord) -> None:
        return None

    def flip_request(self, record: RequestRecord) -> None:
        return None

    def record_task(self, record: TaskRecord) -> None:
        return None

    def record_error(self, error: str) -> None:
        return None

    def record_lag(self, lag_us: int) -> None:
        return None

    def record_dropped(self) -> None:
        return None

    def record_abandoned(self, *, request: bool) -> None:
        return None
