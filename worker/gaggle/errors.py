"""The errors that mean "bad input, exit 2": a wrong option value and a wrong load test.

Both are raised before any load is sent; the CLI prints ``str(error)`` as the one line the user
sees and exits 2, the API answers 400, the operator sets a ``Failed`` phase. Errors met *during*
a run (a refused connection, a failing task) are data, never exceptions: they are counted.
"""

from __future__ import annotations

__all__ = ["ConfigError", "TestDefinitionError"]


class ConfigError(ValueError):
    """A bad option value; ``str()`` is the one line the user sees, naming the option, the value
    and what is allowed."""

    def __init__(self, option: str, value: object, allowed: str, message: str = "") -> None:
        self.option, self.value, self.allowed = option, value, allowed
        super().__init__(message or f"{option}: {value!r} is not allowed; {allowed}")


class TestDefinitionError(Exception):
    """The load test itself is wrong (a non-async task, a bad weight…): bad input, exit 2."""

    __test__ = False  # not a pytest test class
