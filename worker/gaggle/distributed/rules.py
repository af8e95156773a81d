"""The hash of a load test's rules, which a worker must share with its manager.

Goose compared a hash of "all load test rules" so that a worker running a different test could
not join. The rules are the task sets (names, weights, wait times, hosts) and their tasks (names,
weights, sequences, on_start/on_stop) in order; code inside a task is not a rule, so the file's
own hash is sent too, and only logged when it differs.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from gaggle.taskset import TaskSet, describe_rules


def rules_json(tasksets: list[type[TaskSet]]) -> str:
    return json.dumps(describe_rules(tasksets), sort_keys=True, separators=(",", ":"))


def rules_hash(tasksets: list[type[TaskSet]]) -> str:
    return hashlib.sha256(rules_json(tasksets).encode()).hexdigest()


def file_hash(path: str | None) -> str:
    if path is None:
        return ""
    with open(path, "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()


def rules_difference(mine: str, theirs: str) -> str:
    """A short account of what differs between two rules documents (JSON text)."""
    try:
        ours, other = json.loads(mine), json.loads(theirs)
    except ValueError:
        return "the worker's rules are unreadable"
    differences: list[str] = []
    _compare("", ours, other, differences)
    return "; ".join(differences[:5]) or "nothing (same rules)"


def _compare(where: str, ours: Any, other: Any, out: list[str]) -> None:
    if isinstance(ours, dict) and isinstance(other, dict):
        for key in sorted(set(ours) | set(other)):
            _compare(f"{where}.{key}" if where else key, ours.get(key), other.get(key), out)
    elif isinstance(ours, list) and isinstance(other, list):
        if len(ours) != len(other):
            out.append(f"{where or 'task sets'}: manager has {len(ours)}, worker has {len(other)}")
        for index, (a, b) in enumerate(zip(ours, other, strict=False)):
            _compare(f"{where}[{index}]", a, b, out)
    elif ours != other:
        out.append(f"{where}: manager {ours!r}, worker {other!r}")
