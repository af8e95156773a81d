"""Reading one spec field: its value at a dotted path, of the right type, checked by the
engine's own converter where an option stands behind it, and the one error a bad one raises
(``spec.<path>: <value> is not allowed; <allowed>``)."""

from __future__ import annotations

from typing import Any

from gaggle.errors import ConfigError
from gaggle.options import CONVERTERS, OPTIONS_BY_NAME, build_config, most_text


class SpecError(ValueError):
    """``spec.<path>: <value> is not allowed; <allowed>``: one line for a condition and an Event."""

    def __init__(self, path: str, value: object, allowed: str) -> None:
        self.path, self.value, self.allowed = path, value, allowed
        shown = "(missing)" if value is None else repr(value)
        super().__init__(f"spec.{path}: {shown} is not allowed; {allowed}")


_KINDS: list[tuple[type | tuple[type, ...], str]] = [
    (str, "a string"),
    (bool, "true or false"),
    (int, "a whole number"),
    (dict, "an object"),
    (list, "a list"),
    ((int, float), "a number"),
    ((str, int), "a string or a number"),
]


def get_field(
    spec: dict[str, Any], path: str, kind: type | tuple[type, ...], default: Any = None
) -> Any:
    """The value at a dotted path, if it has the right type; ``default`` when absent."""
    value: Any = spec
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            return default
    wanted = next(name for k, name in _KINDS if k == kind)
    if isinstance(value, bool) and kind is not bool:
        raise SpecError(path, value, "use " + wanted)
    if not isinstance(value, kind):
        raise SpecError(path, value, "use " + wanted)
    return value


def engine_value(option: str, value: object) -> Any:
    """Check the value of the spec field that sets ``option`` (the option table names it) with
    the engine's config model; its message, under the spec's name."""
    try:
        return getattr(build_config({option: value}), option)
    except ConfigError as error:
        raise SpecError(OPTIONS_BY_NAME[option].spec, value, error.allowed) from None


def positive_field(
    spec: dict[str, Any], path: str, default: int | None, most: int, why: str
) -> int | None:
    """A whole number from 1 to ``most`` (for the reason ``why``), or ``default`` when absent."""
    value: int | None = get_field(spec, path, int, default)
    if value is not None and value < 1:
        raise SpecError(path, value, "use a whole number ≥ 1")
    if value is not None and value > most:
        raise SpecError(path, value, f"use a whole number ≥ 1 and {most_text(most, why)}")
    return value


def checked_by(option: str, path: str, value: object) -> Any:
    """``value`` of the spec field ``path``, which the operator turns into ``option``'s flag
    (``--join-timeout``…), checked by that option's converter: a value the engine refuses is
    refused here, under the spec's name."""
    try:
        return OPTIONS_BY_NAME[option].check(value)
    except ConfigError as error:
        raise SpecError(path, value, error.allowed) from None


def converted(option: str, value: object) -> Any:
    """The value through the option's own converter alone: for an option whose meaning depends
    on others (``--max-users`` needs an open model), which the caller checks itself."""
    try:
        return CONVERTERS[option][1](value)
    except ConfigError as error:
        raise SpecError(OPTIONS_BY_NAME[option].spec, value, error.allowed) from None
