"""How an option is declared: once, as a field of the model it configures.

``host: str | None = option("-H", "--host", default=None, help=..., convert=...)`` in RunConfig
says everything about ``--host``: the field's name is its argparse dest and ``Default`` key, its
type and default are the option's, and the ``Option`` record in the field's metadata holds the
rest — flags, help, converter, argparse group and action, whether each worker keeps its own
value, the LoadTest spec field that sets it, and what README's table says. ``gaggle.options.table``
collects the records; argparse, the converters, the per-worker keys and the docs come from there.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, TypeVar

from gaggle.options.converters import Converter, boolean, choice, whole

T = TypeVar("T")
Action = Literal["store", "store_true", "count", "append"]
# "": the manager's value rules every worker. The others: each worker keeps its own value and
# ignores the manager's; "same": ``--processes`` workers get the value given to ``gaggle run``,
# "numbered": they get a file each (requests.json → requests-2.json), "own": they get none (one
# port cannot serve them all).
PerWorker = Literal["", "same", "numbered", "own"]

# argparse groups, in the order ``--help`` shows them
RUN, METRICS, ADVANCED, GAGGLE = "run", "metrics", "advanced", "gaggle (one manager, N workers)"
# ``spec`` of an option that no LoadTest field sets: the operator sets it from the gaggle's shape
OPERATOR = "(operator)"


@dataclass(frozen=True, slots=True)
class Option:
    flags: tuple[str, ...]  # short first; the last (long) one names the option in messages
    help: str
    convert: Converter
    group: str = RUN
    action: Action = "store"
    metavar: str | None = None  # default: the choices ("json|csv|raw") or the name in capitals
    choices: tuple[str, ...] = ()
    per_worker: PerWorker = ""
    spec: str = ""  # the LoadTest spec field that sets it, OPERATOR, or "" (``args`` may give it)
    doc: str = ""  # README's meaning, when it says more than ``help``
    name: str = ""  # the field's name: argparse dest and config key
    default: Any = None

    @property
    def flag(self) -> str:
        return self.flags[-1]

    @property
    def takes_value(self) -> bool:
        return self.action in ("store", "append")

    @property
    def shown_metavar(self) -> str | None:
        if not self.takes_value:
            return None
        return self.metavar or "|".join(self.choices) or self.name.upper()

    def check(self, value: object) -> Any:
        """The value converted, or ConfigError naming this option's flag."""
        return self.convert(self.flag, value)


def option(
    *flags: str,
    default: T,
    help: str,
    convert: Converter | None = None,
    choices: tuple[str, ...] = (),
    group: str = RUN,
    action: Action = "store",
    metavar: str | None = None,
    per_worker: PerWorker = "",
    spec: str = "",
    doc: str = "",
) -> T:
    """A model field that is an option. ``convert`` defaults to what the action implies: one of
    ``choices``, a switch for ``store_true``, a count for ``count``."""
    if choices:
        convert = convert or choice(choices)
    elif action == "store_true":
        convert = convert or boolean
    elif action == "count":
        convert = convert or whole(0)
    if convert is None:
        raise TypeError(f"{flags[-1]}: name the converter that checks its value")
    record = Option(flags, help, convert, group, action, metavar, choices, per_worker, spec, doc)
    return field(default=default, metadata={"option": record})


def options_of(model: type[Any]) -> tuple[Option, ...]:
    """The option records of a model's fields, in field order, with their names and defaults."""
    records = []
    for item in fields(model):
        if "option" not in item.metadata:
            raise TypeError(f"{model.__name__}.{item.name} is not declared with option(...)")
        records.append(replace(item.metadata["option"], name=item.name, default=item.default))
    return tuple(records)
