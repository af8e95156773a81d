"""Label selectors (equality- and set-based) and field selectors, as list and watch take them.

Label selectors: ``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``, ``a``, ``!a``, joined
by commas. Field selectors: ``path=value``, ``path==value``, ``path!=value`` joined by commas, where
the path is any dotted path into the object (the real server allows only a few per kind, e.g.
``metadata.name``, ``metadata.namespace``, ``status.phase``, ``spec.nodeName``; we allow all).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Matcher = Callable[[dict[str, Any]], bool]

_SET = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQ = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|=|!=)\s*([A-Za-z0-9_./-]*)\s*$")


class SelectorError(ValueError):
    pass


def _split(selector: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p for p in parts if p.strip()]


def _requirement(text: str) -> Callable[[dict[str, str]], bool]:
    if m := _EQ.match(text):
        key, op, value = m.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if m := _SET.match(text):
        bang, key, op, values = m.groups()
        if op:
            members = {v.strip() for v in values.split(",") if v.strip()}
            if op == "in":
                return lambda labels: labels.get(key) in members
            return lambda labels: labels.get(key) not in members
        if bang:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise SelectorError(f"unable to parse requirement: {text!r}")


def label_matcher(selector: str | None) -> Matcher:
    requirements = [_requirement(part) for part in _split(selector or "")]

    def match(obj: dict[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(requirement(labels) for requirement in requirements)

    return match


def matches_label_selector(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A structured LabelSelector (matchLabels / matchExpressions) or a Service's selector map."""
    if not selector:
        return False
    structured = "matchLabels" in selector or "matchExpressions" in selector
    match_labels = selector.get("matchLabels") if structured else selector
    for key, value in (match_labels or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, op, values = expression["key"], expression["operator"], expression.get("values", [])
        ok = {
            "In": labels.get(key) in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def field_value(obj: dict[str, Any], path: str) -> str | None:
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    if isinstance(value, bool):
        return "true" if value else "false"
    return None if value is None else str(value)


def field_matcher(selector: str | None) -> Matcher:
    requirements = []
    for part in _split(selector or ""):
        m = _EQ.match(part)
        if not m:
            raise SelectorError(f"invalid field selector: {part!r}")
        requirements.append(m.groups())

    def match(obj: dict[str, Any]) -> bool:
        for path, op, value in requirements:
            actual = field_value(obj, path) or ""
            if (actual == value) == (op == "!="):
                return False
        return True

    return match
