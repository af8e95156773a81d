"""Many request names: the one warning that says why, and the busiest-N view that stays readable.

A request's default name is its path, so ids in paths make a name per id: 100,000 rows in the
console, 100,000 × ~20 series on /metrics. Past ``--request-names-limit`` names (default 1,000)
the ``NameGuard`` warns once, naming the commonest pattern (``GET /item/{id}`` seen with 4,213
paths) and how to group it (``name=``); ``busiest`` gives the tables, the LoadTest status and
/metrics the N busiest names plus one ``(other names)`` row that sums the rest exactly (counts
add, histograms merge). The JSON and HTML reports keep every name.

The guard is told on each read of the totals (``WatchedTally``): a ``len()`` a read, nothing per
request, and a name is seen by the first read after it arrived (names reach the totals no sooner).
"""

from __future__ import annotations

import heapq
import logging
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from gaggle.metrics.aggregate import Metrics, RequestKey, request_order
from gaggle.metrics.stats import Stats

log = logging.getLogger(__name__)

NAMES_LIMIT = 1000  # --request-names-limit's default
OTHER_NAMES = "(other names)"
ID = "{id}"

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_HEX = re.compile(r"(?=[a-f]*\d)[0-9a-f]{8,}", re.IGNORECASE)  # a digit in it: not a word
_SHORTCUTS = ("get", "post", "put", "patch", "delete", "head")  # self.get(...), self.post(...)


def _is_id(segment: str) -> bool:
    return segment.isdecimal() or bool(_UUID.fullmatch(segment) or _HEX.fullmatch(segment))


def name_pattern(name: str) -> str:
    """``name`` with each path segment and query value that looks like an id (digits, hex of 8+
    with a digit, a UUID) as ``{id}``: ``/item/42?v=7`` → ``/item/{id}?v={id}``."""
    path, mark, query = name.partition("?")
    pattern = "/".join(ID if _is_id(segment) else segment for segment in path.split("/"))
    if mark:
        pairs = []
        for pair in query.split("&"):
            key, equals, value = pair.partition("=")
            pairs.append(f"{key}={ID}" if equals and _is_id(value) else pair)
        pattern += "?" + "&".join(pairs)
    return pattern


def names_warning(requests: Mapping[RequestKey, Stats], limit: int) -> str:
    """What the guard says: how many names, the commonest pattern, and how to group it."""
    patterns = Counter((method, name_pattern(name)) for method, name in requests)
    (method, pattern), paths = min(patterns.items(), key=lambda item: (-item[1], item[0]))
    folded = (
        f"the console tables, /metrics and the LoadTest status show the {limit:,} busiest and "
        f'fold the rest into "{OTHER_NAMES}"; the JSON and HTML reports (-R) keep every name'
    )
    head = f"{len(requests):,} distinct request names (--request-names-limit {limit:,})"
    if paths < 2:
        return (
            f"{head}: {folded}. Requests to one page with different paths need one name: "
            'self.get(path, name="/item/{id}")'
        )
    shortcut = method.lower() in _SHORTCUTS
    call = f"self.{method.lower()}(" if shortcut else f'self.request("{method}", '
    return (
        f"{head}: {method} {pattern} seen with {paths:,} paths; give these requests one name: "
        f'{call}f"{pattern}", name="{pattern}"). Meanwhile {folded}'
    )


class NameGuard:
    """Warns once, at the first read of totals holding more than ``limit`` request names."""

    __slots__ = ("limit", "warning")

    def __init__(self, limit: int = NAMES_LIMIT) -> None:
        self.limit = limit
        self.warning = ""  # what it said ("": not yet)

    def check(self, requests: Mapping[RequestKey, Stats]) -> None:
        if len(requests) <= self.limit or self.warning:
            return
        self.warning = names_warning(requests, self.limit)
        log.warning("%s", self.warning)


class _Tally(Protocol):
    def metrics(self) -> Metrics: ...

    def reset(self) -> Metrics: ...


class WatchedTally:
    """A run's tally (``run.Tally``) whose reads show a ``NameGuard`` the names they hold; what
    else the tally offers passes through untouched."""

    def __init__(self, tally: _Tally, guard: NameGuard) -> None:
        self.tally, self.guard = tally, guard

    def metrics(self) -> Metrics:
        metrics = self.tally.metrics()
        self.guard.check(metrics.requests)
        return metrics

    def reset(self) -> Metrics:
        counted = self.tally.reset()
        self.guard.check(counted.requests)
        return counted

    def __getattr__(self, name: str) -> Any:
        return getattr(self.tally, name)


@dataclass(frozen=True, slots=True)
class Busiest:
    """What a bounded view shows: ``shown`` (in the tables' order), and the rest summed."""

    shown: list[tuple[RequestKey, Stats]]
    other: Stats | None  # the names past the busiest, merged; None when none were left out
    folded: int  # how many names ``other`` holds


def busiest(requests: Mapping[RequestKey, Stats], limit: int) -> Busiest:
    """The ``limit`` busiest names by count (ties: by name), the rest in one ``Stats``."""
    if len(requests) <= limit:
        return Busiest(sorted(requests.items(), key=request_order), None, 0)
    kept = set(busiest_keys({key: stats.count for key, stats in requests.items()}, limit))
    other = Stats()
    for key, stats in requests.items():
        if key not in kept:
            other.merge(stats)
    top = [(key, requests[key]) for key in kept]
    return Busiest(sorted(top, key=request_order), other, len(requests) - limit)


def busiest_keys(counts: Mapping[RequestKey, int], limit: int) -> list[RequestKey]:
    """The ``limit`` busiest names by count (ties: by name), busiest first."""
    if len(counts) <= limit:
        return sorted(counts, key=lambda key: (-counts[key], key[1], key[0]))
    return heapq.nsmallest(limit, counts, key=lambda key: (-counts[key], key[1], key[0]))


def folded_line(folded: int, limit: int) -> str:
    """The line under a bounded table: what its ``(other names)`` row holds."""
    return (
        f'"{OTHER_NAMES}" sums {folded:,} request names past the {limit:,} busiest '
        "(--request-names-limit); the JSON and HTML reports (-R) list every name"
    )
