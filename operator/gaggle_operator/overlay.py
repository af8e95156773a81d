"""``overlay``: a pod template laid over another, the way a LoadTest's ``template`` goes over the
pod the operator builds and over the operator's defaults (defaults.py).

Its own module because both the spec (which lays the template over the defaults, to check the
result) and the children (which lay it over the pod) use it.
"""

from __future__ import annotations

import copy
from typing import Any


def overlay(base: Any, extra: Any) -> Any:
    """``extra`` laid over ``base``: objects merge key by key, containers by name, other lists
    and scalars are replaced. Neither argument is changed."""
    if isinstance(base, dict) and isinstance(extra, dict):
        merged = copy.deepcopy(base)
        for key, value in extra.items():
            merged[key] = overlay(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    if isinstance(base, list) and isinstance(extra, list) and _named(base) and _named(extra):
        merged_list = copy.deepcopy(base)
        index = {item["name"]: i for i, item in enumerate(merged_list)}
        for item in extra:
            if item["name"] in index:
                position = index[item["name"]]
                merged_list[position] = overlay(merged_list[position], item)
            else:
                merged_list.append(copy.deepcopy(item))
        return merged_list
    return copy.deepcopy(extra)


def _named(items: list[Any]) -> bool:
    return all(isinstance(item, dict) and "name" in item for item in items)
