"""The requests log and the debug log: buffered, formatted and written off the event loop.

Users only ``append`` a record to a list (the hot path); a writer task wakes a few times a
second, swaps the list out, and formats and writes the batch in a worker thread, so a slow disk
never stalls a request.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Callable
from typing import IO, Any

from gaggle.metrics import REQUEST_LOG_FIELDS, RequestRecord

FLUSH_INTERVAL = 0.25  # seconds


def _json_lines(items: list[Any]) -> str:
    return "".join(json.dumps(_plain(item), default=str) + "\n" for item in items)


def _plain(item: Any) -> Any:
    return item.log_fields() if isinstance(item, RequestRecord) else item


def _csv_rows(items: list[Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for record in items:
        fields = record.log_fields()
        writer.writerow([fields[name] for name in REQUEST_LOG_FIELDS])
    return buffer.getvalue()


def _raw(items: list[Any]) -> str:
    return "".join(f"{item!r}\n" for item in items)


FORMATTERS: dict[str, Callable[[list[Any]], str]] = {
    "json": _json_lines,
    "csv": _csv_rows,
    "raw": _raw,
}


class BufferedLog:
    """``append`` now, written by ``run()``'s flushes; ``close()`` writes what is left."""

    def __init__(self, path: str, fmt: str, header: str = "") -> None:
        self._format = FORMATTERS[fmt]
        self._file: IO[str] = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        if header:
            self._file.write(header)
        self._buffer: list[Any] = []
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.append = self._buffer.append  # bound once: the hot path is a plain list append

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            if not self._buffer:
                return
            batch = self._buffer[:]
            self._buffer.clear()
            await asyncio.to_thread(self._write, batch)

    def _write(self, batch: list[Any]) -> None:
        self._file.write(self._format(batch))

    async def close(self) -> None:
        if self._task is not None:
            # Cancel only between flushes: a cancelled to_thread() leaves its thread writing,
            # and the file would be closed under it (the batch lost, the error unseen).
            async with self._lock:
                self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.flush()
        self._file.close()


def open_requests_log(path: str, fmt: str) -> BufferedLog:
    header = ",".join(REQUEST_LOG_FIELDS) + "\n" if fmt == "csv" else ""
    return BufferedLog(path, fmt, header)


def open_debug_log(path: str, fmt: str) -> BufferedLog:
    return BufferedLog(path, fmt)
