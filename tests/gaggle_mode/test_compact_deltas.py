"""Compact deltas (issue metrics-at-scale, bar "1,000 workers ≤ 20 MB/s"): each column travels at
the narrowest width that holds its values, and a request name travels once a stream, its later
rows by id. Checked at every width's edge, against the plain-Python reference decoder and the
manager's fold; a width or an id that no worker sends is refused with a message; two streams
number their keys each their own way, through a real manager."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gaggle.distributed.codec import KeyIds, pack, to_delta
from gaggle.distributed.delta_checks import DeltaLedger
from gaggle.distributed.delta_tables import decode
from gaggle.distributed.merged_tally import Totals
from gaggle.metrics import NO_MIN, Aggregator, Metrics, RequestRecord, Stats
from gaggle.wire import gaggle_pb2 as wire
from tests.gaggle_mode.test_joins import LinkedWorker, new_manager, serving, within
from tests.support.reference_codec import Names, column, from_delta, merge_delta, values

EDGES = [  # typecode, values, the width they travel at
    ("B", [], 0),
    ("I", [0], 1),
    ("I", [255], 1),
    ("I", [256], 2),
    ("I", [0, 255, 65535], 2),
    ("I", [65536], 4),
    ("I", [2**32 - 1], 4),
    ("Q", [2**32 - 1], 4),
    ("Q", [2**32], 8),
    ("Q", [NO_MIN], 8),
    ("Q", [2**64 - 1], 8),
    ("H", [255], 1),
    ("H", [256, 65535], 2),
    ("q", [127, -128], 1),
    ("q", [128], 2),
    ("q", [-129], 2),
    ("q", [-1, 32767], 2),
    ("q", [32768], 4),
    ("q", [2**31 - 1, -(2**31)], 4),
    ("q", [2**31], 8),
    ("q", [-(2**31) - 1], 8),
    ("q", [2**63 - 1, -(2**63)], 8),
]


@pytest.mark.parametrize(("typecode", "numbers", "width"), EDGES)
def test_a_column_travels_at_the_narrowest_width_that_holds_it(
    typecode: str, numbers: list[int], width: int
) -> None:
    packed = pack(typecode, numbers)
    assert packed == column(typecode, *numbers)  # the reference's bytes, built by hand
    assert packed[:1] == (bytes((width,)) if numbers else b"")
    assert len(packed) == (1 + width * len(numbers) if numbers else 0)
    assert values(typecode, packed) == numbers


@pytest.mark.parametrize(("typecode", "number"), [("I", 2**32), ("Q", -1), ("H", 65536)])
def test_a_value_its_column_cannot_hold_is_not_packed(typecode: str, number: int) -> None:
    with pytest.raises(OverflowError):
        pack(typecode, [1, number])


def row(count: int, time_us: int, fail: int = 0) -> Stats:
    """``count`` requests of ``time_us`` each (``fail`` of them failed), all status 200."""
    stats = Stats()
    stats.success_count, stats.fail_count = count - fail, fail
    stats.sum_us, stats.min_us, stats.max_us = count * time_us, time_us, time_us
    stats.histogram.counts = {3: count} if count else {}  # the bucket matters not here
    stats.histogram.total = count
    stats.status_codes = {200: count} if count else {}
    if not count:
        stats.min_us = NO_MIN
    return stats


@pytest.mark.parametrize(
    ("stats", "widths"),
    [(row(255, 1), {"success_count": 2, "bucket_counts": 1, "sum_us": 1, "max_us": 1}),
     (row(127, 2), {"success_count": 1, "bucket_counts": 1, "sum_us": 1, "max_us": 1}),
     (row(256, 256), {"bucket_counts": 2, "sum_us": 4, "min_us": 2}),
     (row(65_535, 65_537), {"bucket_counts": 2, "sum_us": 4, "min_us": 4, "max_us": 4}),
     (row(65_536, 65_537), {"bucket_counts": 4, "status_counts": 4, "sum_us": 8, "min_us": 4}),
     (row(2**32 - 1, 1), {"bucket_counts": 4, "success_count": 8, "sum_us": 4}),
     (row(2**32, 1), {"bucket_counts": 4, "bucket_rows": 1, "sum_us": 8}),  # split in 2 entries
     (row(0, 0), {"min_us": 8, "max_us": 1, "bucket_rows": 1, "bucket_counts": 0})],
)  # fmt: skip
def test_a_row_at_a_widths_edge_crosses_exactly(stats: Stats, widths: dict[str, int]) -> None:
    """One row whose numbers sit at an edge: each column is as wide as its value needs, and
    the reference decoder, the checks and the manager's fold all read the row exactly."""
    metrics = Metrics()
    metrics.requests[("GET", "/edge")] = stats
    delta = wire.Delta.FromString(to_delta(metrics, 1, 1, False).SerializeToString())
    table = delta.requests
    assert {name: getattr(table, name)[:1] for name in widths} == {
        name: bytes((width,)) if width else b"" for name, width in widths.items()
    }
    assert from_delta(delta) == metrics
    assert DeltaLedger().check(delta, True) == ""
    totals = Totals()
    totals.merge(delta)
    assert totals.metrics() == metrics


def test_a_stream_names_each_key_once_and_its_totals_are_exact() -> None:
    """A worker's deltas over one stream: the first names its 300 keys, the next ones carry ids
    (one a byte: 300 keys take two), a new name is named when it comes; the manager's fold,
    decoded with the stream's keys, equals the reference and what the worker counted."""
    keys, ledger, names = KeyIds(), DeltaLedger(), Names()
    totals, reference, expected = Totals(), Metrics(), Metrics()
    sizes = []
    for sequence in range(1, 6):
        aggregator = Aggregator()
        paths = [f"/api/resource/{i}" for i in range(300)] + [f"/new/{sequence}"] * (sequence > 2)
        for number, path in enumerate(paths):
            for status in (200, 200, 404, 500, 0)[: 1 + number % 5]:
                aggregator.record_request(RequestRecord(
                    0, "GET", path, path, path, False, 1_000 * (1 + number), status,
                    0 < status < 400, False, 0, "" if status else "refused"))  # fmt: skip
        metrics = aggregator.drain()
        expected.merge(metrics)
        sent = to_delta(metrics, sequence, 3, False, keys).SerializeToString()
        sizes.append(len(sent))
        delta = wire.Delta.FromString(sent)
        assert list(delta.requests.name) == (paths[:300] if sequence == 1 else paths[300:])
        new_ids = [*range(300)] if sequence == 1 else [297 + sequence] * (sequence > 2)
        assert values("I", delta.requests.key_ids) == new_ids
        assert delta.requests.row_keys[:1] == b"\x02"  # ids up to 299: two bytes
        merge_delta(reference, delta, names)
        tables = decode(delta, ledger.keys)
        assert ledger.check(delta, True, tables) == ""
        totals.merge(delta, tables)
    assert totals.metrics() == reference == expected
    assert len(ledger.keys.tables[0]) == 303
    names_bytes = sum(len(f"GET/api/resource/{i}") for i in range(300))
    assert sizes[0] - sizes[1] > names_bytes, sizes  # the same rows, without their names


def test_a_key_named_twice_or_never_is_refused_and_a_refused_delta_names_nothing() -> None:
    keys, ledger = KeyIds(), DeltaLedger()

    def delta_of(sequence: int, *paths: str) -> wire.Delta:
        aggregator = Aggregator()
        for path in paths:
            aggregator.record_request(RequestRecord(0, "GET", path, path, path, False, 1_000,
                                                    200, True, False, 0))  # fmt: skip
        return to_delta(aggregator.drain(), sequence, 1, False, keys)

    assert ledger.check(delta_of(1, "/a"), True) == ""
    again = delta_of(2, "/b")
    again.requests.key_ids = column("I", 0)  # /b named with /a's id
    assert ledger.check(again, True) == (
        "malformed: requests: key id 0 named again (its stream named it before)"
    )
    twice = delta_of(2, "/c", "/d")
    twice.requests.key_ids = column("I", 2, 2)
    assert "malformed: requests: a key id named twice in one table: [2, 2]" in ledger.check(
        twice, True
    )
    refused = delta_of(2, "/e")
    refused.users_running = 10**7  # refused by a check after its tables were read
    assert ledger.check(refused, True).startswith("users_running 10000000")
    by_id = delta_of(2, "/e")  # /e by its id only: the refused delta named it for nobody
    assert list(by_id.requests.name) == []
    assert ledger.check(by_id, True) == (
        f"malformed: requests: row 0: key id {keys.requests[('GET', '/e')]} was never named on "
        "its stream"
    )
    assert ledger.check(delta_of(2), True) == ""  # the stream itself is still sound


def test_two_streams_number_their_keys_each_their_own_way() -> None:
    """Through a real manager: two workers' streams both give id 0 to a key of their own, and
    send later rows by id alone; each id is read by its stream's names, every request counted
    once."""

    def deltas(path: str, counts: list[int], users: int) -> list[wire.Delta]:
        keys, sent = KeyIds(), []
        for sequence, count in enumerate([*counts, 0], start=1):
            aggregator = Aggregator()
            for _ in range(count):
                aggregator.record_request(RequestRecord(0, "GET", path, path, path, False, 7,
                                                        200, True, False, 0))  # fmt: skip
            delta = to_delta(aggregator.drain(), sequence, users, sequence > len(counts), keys)
            delta.hatched = True
            sent.append(delta)
        return sent

    async def gaggle() -> Any:
        manager = new_manager(workers=2, users=2)
        run, port = await serving(manager)
        workers = [LinkedWorker(port, "a"), LinkedWorker(port, "b")]
        try:
            for worker in workers:
                await asyncio.to_thread(worker.join)
            for worker, path, counts in zip(workers, ("/a", "/b"), ([1, 3], [2, 4]), strict=True):
                assert await asyncio.to_thread(worker.until, "start") is not None
                sent = deltas(path, counts, worker.start.users if worker.start else 0)
                assert [values("I", d.requests.row_keys) for d in sent] == [[0], [0], []]
                assert [list(d.requests.name) for d in sent] == [[path], [], []]
                for delta in sent:
                    worker.send(delta)
            return await within(run, "the run's end")
        finally:
            for worker in workers:
                worker.close()

    totals = asyncio.run(gaggle()).all_metrics()
    assert {key: stats.count for key, stats in totals.requests.items()} == {
        ("GET", "/a"): 4,
        ("GET", "/b"): 6,
    }
