"""Each request row as /metrics exports it, kept up to date from the run's feed of changes.

A scrape once folded every row's fine histogram into Prometheus's fixed buckets: 100 ms a scrape
with 200 names of a wide latency spread, on the event loop, every few seconds for as long as
Prometheus watches. Here a scrape takes what arrived since the previous one (``Source.follow``)
and adds only that: each changed bucket once, into its row's fixed bucket and into the run's
(which, less the rows shown, gives the ``(other names)`` row without merging every other name).

The three request families are written here as text too: they are nearly all of a page (200
names: ~4,700 lines), and prometheus_client's exposition validates and escapes every label of
every line (25 ms a scrape). A row's labels are escaped once, and its lines are written again
only when it changed.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterator, Mapping

from gaggle.metrics import Metrics, RequestKey, Stats, bucket_bounds, busiest_keys, request_order

FAMILIES = (  # name, type, help: the page's request families, in this order
    ("gaggle_requests_total", "counter", "Requests made, by final status."),
    ("gaggle_request_failures_total", "counter", "Requests counted as failed."),
    ("gaggle_response_time_seconds", "histogram", "Response time, body included."),
)


class Row:
    """One request row's figures for /metrics: counts, not percentiles (those are Prometheus's)."""

    __slots__ = ("buckets", "codes", "count", "fails", "lines", "sum_us")

    def __init__(self, bounds: int) -> None:
        self.lines: tuple[str, str, str] | None = None  # its text by family, until it changes
        self.count = self.fails = self.sum_us = 0
        self.codes: dict[int, int] = {}  # status code → requests
        self.buckets = [0] * (bounds + 1)  # by fixed bound (the last: above every bound)

    def add(self, stats: Stats, buckets: list[int]) -> None:
        """``stats`` arrived; ``buckets``: its times by fixed bound, as ``self.buckets``."""
        self.lines = None
        self.count += stats.count
        self.fails += stats.fail_count
        self.sum_us += stats.sum_us
        codes = self.codes
        for code, n in stats.status_codes.items():
            codes[code] = codes.get(code, 0) + n
        self.buckets = [a + b for a, b in zip(self.buckets, buckets, strict=True)]

    def less(self, rows: list[Row]) -> Row:
        """This row (the run's) less ``rows``: what the names left out of them hold."""
        other = Row(len(self.buckets) - 1)
        other.count = self.count - sum(row.count for row in rows)
        other.fails = self.fails - sum(row.fails for row in rows)
        other.sum_us = self.sum_us - sum(row.sum_us for row in rows)
        codes = dict(self.codes)
        for row in rows:
            for code, n in row.codes.items():
                codes[code] -= n
        other.codes = {code: n for code, n in codes.items() if n}
        other.buckets = [
            total - sum(row.buckets[i] for row in rows) for i, total in enumerate(self.buckets)
        ]
        return other

    def cumulative(self, bounds: tuple[float, ...]) -> list[tuple[str, float]]:
        """Prometheus's buckets: each bound with the requests at or under it, then +Inf."""
        running, out = 0, []
        for bound, n in zip(bounds, self.buckets, strict=False):
            running += n
            out.append((repr(bound), float(running)))
        out.append(("+Inf", float(running + self.buckets[-1])))
        return out

    def text(self, labels: str, bounds: tuple[str, ...]) -> tuple[str, str, str]:
        """Its lines in each family (``labels``: its own, escaped, each followed by a comma).
        Counts are written as integers, which the text format reads as it reads ``5.0``."""
        if self.lines is None:
            codes = "".join(
                f'gaggle_requests_total{{{labels}status="{code}"}} {n}\n'
                for code, n in sorted(self.codes.items())
            )
            own = labels[:-1]
            failures = f"gaggle_request_failures_total{{{own}}} {self.fails}\n"
            name = "gaggle_response_time_seconds"
            running = list(itertools.accumulate(self.buckets))
            lines = [
                f'{name}_bucket{{{labels}le="{bound}"}} {n}\n'
                for bound, n in zip(bounds, running, strict=True)
            ]
            lines.append(f"{name}_count{{{own}}} {running[-1]}\n")
            lines.append(f"{name}_sum{{{own}}} {self.sum_us / 1e6!r}\n")
            self.lines = (codes, failures, "".join(lines))
        return self.lines


class RequestSeries:
    """The request rows of /metrics, each brought up to date by ``update`` from a feed."""

    def __init__(
        self, follow: Callable[[], Callable[[], list[Metrics]]], bounds: tuple[float, ...]
    ) -> None:
        self.bounds = bounds
        self._follow = follow
        self._take: Callable[[], list[Metrics]] | None = None  # the feed, from the first scrape
        self._bounds_us = [int(bound * 1_000_000) for bound in bounds]
        self._positions: dict[int, int] = {}  # histogram bucket → fixed bound
        self._bound_labels = (*(repr(bound) for bound in bounds), "+Inf")
        self._labels: dict[RequestKey, str] = {}  # by row: its labels, escaped
        self.rows: dict[RequestKey, Row] = {}
        self.run = Row(len(bounds))  # every row's sum

    def update(self) -> None:
        """What arrived since the previous update added (the first: everything so far)."""
        if self._take is None:
            self._take = self._follow()
        rows, run, slots = self.rows, self.run, len(self.bounds) + 1
        find, position = self._positions.get, self._position
        for delta in self._take():  # each as it arrived: no merge of them first
            for key, stats in delta.requests.items():
                buckets = [0] * slots  # each fine bucket's count once, into its fixed bound
                for index, n in stats.histogram.counts.items():
                    at = find(index)
                    buckets[position(index) if at is None else at] += n
                row = rows.get(key)
                if row is None:
                    row = rows[key] = Row(len(self.bounds))
                row.add(stats, buckets)
                run.add(stats, buckets)

    def shown(self, limit: int) -> Iterator[tuple[RequestKey | None, Row]]:
        """The ``limit`` busiest rows by name, then the rest as one ``(other names)`` row
        (key ``None``) when any was left out: the tables' busiest-N view, at the cost of N."""
        rows = self.rows
        if len(rows) <= limit:
            yield from sorted(rows.items(), key=request_order)
            return
        keys = busiest_keys(_Counts(rows), limit)
        top = sorted(((key, rows[key]) for key in keys), key=request_order)
        yield from top
        yield None, self.run.less([row for _, row in top])

    def text(self, limit: int, other_name: str) -> str:
        """The request families of a page: the rows ``shown`` (the rest: ``other_name``, with
        no method: theirs are mixed)."""
        parts: tuple[list[str], list[str], list[str]] = ([], [], [])
        for key, row in self.shown(limit):
            method, name = key if key is not None else ("", other_name)
            labels = self._labels.get((method, name))
            if labels is None:
                labels = self._labels[method, name] = (
                    f'method="{_escape(method)}",name="{_escape(name)}",'
                )
            for part, lines in zip(parts, row.text(labels, self._bound_labels), strict=True):
                part.append(lines)
        return "".join(
            f"# HELP {name} {words}\n# TYPE {name} {kind}\n" + "".join(part)
            for (name, kind, words), part in zip(FAMILIES, parts, strict=True)
        )

    def _position(self, index: int) -> int:
        """The fixed bound a fine bucket counts toward: the first its highest value is within
        (exact up to the histogram's 0.4 %); past the last bound, the ``+Inf`` slot."""
        position = self._positions.get(index)
        if position is None:
            high = bucket_bounds(index)[1]
            position = self._positions[index] = bisect.bisect_left(self._bounds_us, high)
        return position


class _Counts(Mapping[RequestKey, int]):
    """Rows read as their counts, without a dict of them (``busiest_keys`` reads a mapping)."""

    def __init__(self, rows: dict[RequestKey, Row]) -> None:
        self._rows = rows

    def __getitem__(self, key: RequestKey) -> int:
        return self._rows[key].count

    def __iter__(self) -> Iterator[RequestKey]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)


def _escape(value: str) -> str:
    """A label value as the text format writes it: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
