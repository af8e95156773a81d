"""Load a test file (``gaggle run FILE``) and find the task sets it defines.

Each kind of broken file gets a message that points at the file and, where there is one, the
line: missing, not Python, a syntax error, an exception while importing, no task set.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType

from gaggle.errors import TestDefinitionError
from gaggle.load import LoadShape
from gaggle.taskset import TaskSet


def _line_in(path: Path, error: BaseException) -> str:
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if Path(frame.filename).resolve() == path:
            return f"{path}:{frame.lineno}"
    return str(path)


def load_module(path_text: str) -> ModuleType:
    path = Path(path_text).expanduser().resolve()
    if not path.is_file():
        raise TestDefinitionError(
            f"test file {path_text!r} not found (give the path of a .py file)"
        )
    if path.suffix != ".py":
        raise TestDefinitionError(f"test file {path_text!r} is not a Python file (.py)")
    name = "gaggle_test_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TestDefinitionError(f"test file {path_text!r} cannot be loaded")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    # Helper modules beside the test import as usual: beside it as given, not beside what a link
    # points to (a kubelet's ConfigMap file is a link into ..data/; the helpers sit beside it).
    folder = str(Path(path_text).expanduser().absolute().parent)
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        where = f"{error.filename or path}:{error.lineno}"
        raise TestDefinitionError(f"{where}: syntax error: {error.msg}") from None
    except TestDefinitionError as error:
        raise TestDefinitionError(f"{_line_in(path, error)}: {error}") from None
    except Exception as error:
        raise TestDefinitionError(
            f"{_line_in(path, error)}: importing the test file raised "
            f"{type(error).__name__}: {error}"
        ) from None
    finally:
        if sys.path and sys.path[0] == folder:
            sys.path.pop(0)
    return module


def find_tasksets(module: ModuleType, path_text: str) -> list[type[TaskSet]]:
    """Task sets defined in the file itself, in definition order; abstract ones are skipped."""
    found = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, TaskSet)
        and value.__module__ == module.__name__
        and not value.abstract
    ]
    if not found:
        raise TestDefinitionError(
            f"{path_text} defines no task set: subclass gaggle.TaskSet and add @task methods"
        )
    return found


def find_shape(module: ModuleType, path_text: str) -> type[LoadShape] | None:
    """The file's own LoadShape subclass, if it defines one; two are refused (which one would
    drive the run?)."""
    found = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, LoadShape)
        and value.__module__ == module.__name__
    ]
    if len(found) > 1:
        names = " and ".join(shape.__name__ for shape in found)
        raise TestDefinitionError(
            f"{path_text} defines {len(found)} load shapes ({names}); a run follows one: "
            "keep one LoadShape subclass in the file"
        )
    return found[0] if found else None


def load_tasksets(path_text: str) -> list[type[TaskSet]]:
    return find_tasksets(load_module(path_text), path_text)


def load_test(path_text: str) -> tuple[list[type[TaskSet]], type[LoadShape] | None]:
    """A test file's task sets and its load shape (None when -u/-r/-t or a plan say the load)."""
    module = load_module(path_text)
    return find_tasksets(module, path_text), find_shape(module, path_text)
