"""Gaggle: load tests are Python code; many simulated users run async tasks against a host.

    from gaggle import TaskSet, task, between

    class WebsiteUser(TaskSet):
        wait_time = between(5, 15)

        @task
        async def index(self) -> None:
            await self.get("/")

Run it with ``gaggle run test.py --host http://127.0.0.1:8080 -u 10 -r 2 -t 1m``.
"""

from gaggle._version import __version__
from gaggle.attack import Attack
from gaggle.errors import ConfigError, TestDefinitionError
from gaggle.load import LoadShape, Stage
from gaggle.options import Default, RunConfig
from gaggle.response import Response
from gaggle.run import RunResult
from gaggle.taskset import TaskSet, task
from gaggle.wait import between, constant, pacing

__all__ = [
    "Attack",
    "ConfigError",
    "Default",
    "LoadShape",
    "Response",
    "RunConfig",
    "RunResult",
    "Stage",
    "TaskSet",
    "TestDefinitionError",
    "__version__",
    "between",
    "constant",
    "pacing",
    "task",
]
