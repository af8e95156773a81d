"""The public way to write a load test: ``TaskSet`` subclasses with ``@task`` async methods.

A task set is a kind of simulated user; one instance is created per user, so instance attributes
are per-user state. Requests go through the user's session (its own cookies and connections),
which the engine attaches before the first task runs.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from types import CodeType
from typing import Any, ClassVar, Protocol, TypeVar, overload

from gaggle.errors import TestDefinitionError
from gaggle.http import Params, RequestOptions
from gaggle.response import Response
from gaggle.wait import WaitTime

TaskFunction = Callable[[Any], Awaitable[None]]
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """One ``@task``: what the scheduler needs to know about it."""

    func: TaskFunction
    name: str
    weight: int = 1
    sequence: int | None = None
    on_start: bool = False
    on_stop: bool = False


def _check_int(field: str, value: object, minimum: int, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise TestDefinitionError(
            f"{where}: {field}={value!r} is not allowed; use a whole number ≥ {minimum}"
        )
    return value


def _make_spec(func: Callable[..., Any], **options: Any) -> TaskSpec:
    where = f"task {func.__qualname__}"
    if not inspect.iscoroutinefunction(func):
        raise TestDefinitionError(f"{where} must be an async function (write `async def`)")
    name = options.get("name") or func.__name__
    if not isinstance(name, str):
        raise TestDefinitionError(f"{where}: name={name!r} is not allowed; use a string")
    sequence = options.get("sequence")
    spec = TaskSpec(
        func=func,
        name=name,
        weight=_check_int("weight", options.get("weight", 1), 1, where),
        sequence=None if sequence is None else _check_int("sequence", sequence, 0, where),
        on_start=bool(options.get("on_start", False)),
        on_stop=bool(options.get("on_stop", False)),
    )
    code = getattr(func, "__code__", None)
    if isinstance(code, CodeType):
        _specs_by_code[code] = spec
    return spec


# Every task's code object → its spec: how the loop watch names the task a stalled stack is in.
# The engine's frames below a task may be compiled (no Python frame), the task's own never are.
# One entry per @task written, for the life of the process.
_specs_by_code: dict[CodeType, TaskSpec] = {}


def spec_of_code(code: CodeType) -> TaskSpec | None:
    """The task whose function runs ``code``, or None."""
    return _specs_by_code.get(code)


@overload
def task(func: F, /) -> F: ...
@overload
def task(
    *,
    weight: int = 1,
    name: str | None = None,
    sequence: int | None = None,
    on_start: bool = False,
    on_stop: bool = False,
) -> Callable[[F], F]: ...
def task(func: Any = None, /, **options: Any) -> Any:
    """Mark an async method of a TaskSet as a task: ``@task`` or ``@task(weight=2, ...)``.

    ``weight``: how many times per cycle; ``sequence``: tasks with a sequence run first, in
    ascending order, the rest after them in random order; ``on_start``/``on_stop``: run once when
    the user starts/stops instead of in the loop; ``name``: the name shown in tables.
    """
    unknown = set(options) - {"weight", "name", "sequence", "on_start", "on_stop"}
    if unknown:
        raise TestDefinitionError(
            f"@task got unknown option(s) {sorted(unknown)}; allowed: weight, name, sequence, "
            "on_start, on_stop"
        )

    def mark(f: F) -> F:
        f.__gaggle_task__ = _make_spec(f, **options)  # type: ignore[attr-defined]
        return f

    return mark(func) if func is not None else mark


class UserSession(Protocol):
    """What a running user's TaskSet talks to; implemented by the engine."""

    user_index: int
    base_url: str

    async def request(
        self, method: str, path: str, name: str | None, options: RequestOptions
    ) -> Response: ...

    def set_verdict(
        self, response: Response, success: bool, tag: str | None, headers: Any, body: Any
    ) -> None: ...

    def log_debug(self, tag: str, response: Response | None, headers: Any, body: Any) -> None: ...


class TaskSet:
    """Subclass this, set ``weight``/``wait_time``/``host`` if needed, and add ``@task`` methods."""

    weight: ClassVar[int] = 1
    wait_time: ClassVar[WaitTime | None] = None
    host: ClassVar[str | None] = None
    abstract: ClassVar[bool] = False  # a base class that shares helpers but is not run
    client: ClassVar[str | None] = None  # one of config.HTTP_CLIENTS; None: the run's --http-client
    tasks: ClassVar[tuple[TaskSpec, ...]] = ()

    _gaggle: UserSession

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.abstract = bool(cls.__dict__.get("abstract", False))
        specs: dict[str, TaskSpec] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                spec = getattr(value, "__gaggle_task__", None)
                if isinstance(spec, TaskSpec):
                    specs[attr] = spec  # an override keeps the base class's position
        cls.tasks = tuple(specs.values())

    # --- identity ------------------------------------------------------------------------
    @property
    def user_index(self) -> int:
        """0-based index of this simulated user in the whole run."""
        return self._gaggle.user_index

    @property
    def base_url(self) -> str:
        """The host this user sends relative paths to (changes with --sticky-follow)."""
        return self._gaggle.base_url

    # --- requests ------------------------------------------------------------------------
    # Not ``async def``: each returns the user's own request coroutine, to be awaited as if it
    # were theirs. A wrapper coroutine per layer was a frame made, and passed through at every
    # resume, twice a request (hot-path issue: measured per request).
    def request(
        self,
        method: str,
        path: str,
        *,
        name: str | None = None,
        headers: Mapping[str, str] | None = None,
        params: Params | None = None,
        data: Any = None,
        json: Any = None,
        timeout: float | None = None,
        allow_redirects: bool = True,
    ) -> Coroutine[Any, Any, Response]:
        """Send one request, record it, return the response. ``name`` groups it in tables."""
        options = RequestOptions(headers, params, data, json, timeout, allow_redirects)
        return self._gaggle.request(method.upper(), path, name, options)

    def get(self, path: str, **kwargs: Any) -> Coroutine[Any, Any, Response]:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Coroutine[Any, Any, Response]:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Coroutine[Any, Any, Response]:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Coroutine[Any, Any, Response]:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Coroutine[Any, Any, Response]:
        return self.request("DELETE", path, **kwargs)

    def head(self, path: str, **kwargs: Any) -> Coroutine[Any, Any, Response]:
        return self.request("HEAD", path, **kwargs)

    # --- verdicts and debugging ------------------------------------------------------------
    def set_failure(
        self, tag: str, response: Response, headers: Any = None, body: Any = None
    ) -> None:
        """Count ``response`` as failed (e.g. a 200 page without the expected form) and write
        a debug-log entry; ``headers``/``body`` default to the response's own."""
        self._gaggle.set_verdict(response, False, tag, headers, body)

    def set_success(self, response: Response) -> None:
        """Count ``response`` as successful (e.g. an expected 404)."""
        self._gaggle.set_verdict(response, True, None, None, None)

    def log_debug(
        self, tag: str, response: Response | None = None, headers: Any = None, body: Any = None
    ) -> None:
        """Write an entry to the debug log (``--debug-file``); a no-op when it is off."""
        self._gaggle.log_debug(tag, response, headers, body)


def describe_rules(tasksets: list[type[TaskSet]]) -> list[dict[str, Any]]:
    """The test's rules as plain data: what ``--list`` prints and Gaggle mode hashes."""
    return [
        {
            "name": ts.__name__,
            "weight": ts.weight,
            "wait_time": repr(ts.wait_time) if ts.wait_time is not None else None,
            "host": ts.host,
            "tasks": [
                {
                    "name": spec.name,
                    "weight": spec.weight,
                    "sequence": spec.sequence,
                    "on_start": spec.on_start,
                    "on_stop": spec.on_stop,
                }
                for spec in ts.tasks
            ],
        }
        for ts in tasksets
    ]
