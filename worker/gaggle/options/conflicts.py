"""Every rule between run options: which load model they ask for, and the combinations that
contradict each other.

Three ways say how the load goes: ``-u``/``-r`` (with ``-t`` or ``--iterations``), a
``--test-plan`` (users or rates), and ``--arrival-rate`` (with ``-t``). Two of them in one layer
(one command line, one ``set_default`` program) are refused with one line naming both; across
layers the later one wins (a command line's ``-u`` over a program's default plan, or back). A
load shape in the test file says all of it, so any of them beside a shape is refused.
(The Gaggle-mode flags' rules — which go with ``--manager``, which with ``--worker`` — are
``distributed.role``'s, beside the role they decide.)
"""

from __future__ import annotations

from gaggle.errors import ConfigError
from gaggle.load.shape import LoadShape
from gaggle.options.fields import options_of
from gaggle.options.load import LoadOptions

STEADY_KEYS = ("users", "hatch_rate", "run_time")  # what a --test-plan replaces
SHAPE_KEYS = (*STEADY_KEYS, "iterations", "test_plan", "arrival_rate")  # what a shape's ticks say
FLAGS = {entry.name: entry.flag for entry in options_of(LoadOptions)}  # from the declarations


def _refuse(option: str, value: object, other: str, why: str) -> ConfigError:
    return ConfigError(option, value, "", f"{option} and {FLAGS[other]} do not go together: {why}")


def _arrivals_alone(layers: list[dict[str, object]]) -> None:
    """--arrival-rate says when iterations start: users, their rate, a plan or iterations per
    user would say it too. (-t gives its run time.)"""
    open_at = max((i for i, layer in enumerate(layers) if "arrival_rate" in layer), default=-1)
    if open_at < 0:
        return
    rivals = ("users", "hatch_rate", "iterations", "test_plan")
    for index, layer in enumerate(layers):
        given = [key for key in rivals if key in layer]
        if index == open_at and given:
            raise _refuse(
                "--arrival-rate",
                layer["arrival_rate"],
                given[0],
                "the arrival rate says when iterations start (and -t how long); "
                "give one or the other",
            )
        if index < open_at:
            for key in rivals:
                layer.pop(key, None)
        elif index > open_at and given:
            for earlier in layers[: open_at + 1]:
                earlier.pop("arrival_rate", None)
            return


def _plan_or_steady(layers: list[dict[str, object]]) -> None:
    """A plan and -u/-r/-t in one layer contradict each other; across layers the later wins."""
    plan_at = max((i for i, layer in enumerate(layers) if "test_plan" in layer), default=-1)
    if plan_at < 0:
        return
    for index, layer in enumerate(layers):
        steady = [key for key in STEADY_KEYS if key in layer]
        if index == plan_at and steady:
            raise _refuse(
                "--test-plan",
                layer["test_plan"],
                steady[0],
                "the plan says the users, their rate and the run time; give one or the other",
            )
        if index == plan_at and "iterations" in layer:
            raise _refuse(
                "--test-plan",
                layer["test_plan"],
                "iterations",
                "the plan ends the run, iterations end each user; give one or the other",
            )
        if index < plan_at:
            for key in (*STEADY_KEYS, "iterations"):
                layer.pop(key, None)
        elif index > plan_at and (steady or "iterations" in layer):
            for earlier in layers[: plan_at + 1]:
                earlier.pop("test_plan", None)
            return


def check_load_model(layers: list[dict[str, object]]) -> None:
    """Refuse contradicting load options in one layer; drop the earlier layers' rivals."""
    _arrivals_alone(layers)
    _plan_or_steady(layers)


def check_shape_alone(shape: type[LoadShape], *layers: dict[str, object]) -> None:
    """A load shape says the users, their rate and the end: an option that says so too is
    refused rather than silently ignored (Locust ignores it)."""
    for key in SHAPE_KEYS:
        for layer in layers:
            if layer.get(key) is not None:
                raise ConfigError(
                    FLAGS[key],
                    layer[key],
                    "",
                    f"{FLAGS[key]} does not go with the load shape {shape.__name__}: its tick says "
                    "the users, their rate and when the run ends; leave the option out",
                )
