"""The run's log files: the requests log (-m), the debug log (-d) and the log file (-L).

Users only ``append`` a record to a list (the hot path); a writer task wakes a few times a
second, swaps the list out, and formats and writes the batch in a worker thread, so a slow disk
never stalls a request.

A file that fails mid-run (a full disk) never costs the run: the failure is one error line
naming the option and the path, that file is closed and the rest of its lines dropped, and the
tables, the report and the exit code are delivered as if it had not been asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import logging
import sys
from collections.abc import Callable
from typing import IO, Any

from gaggle.errors import ConfigError
from gaggle.metrics import REQUEST_LOG_FIELDS, RequestRecord
from gaggle.options import RunConfig

log = logging.getLogger(__name__)
FLUSH_INTERVAL = 0.25  # seconds
DEFAULT_LOG_FILE = "gaggle.log"  # -g without -L


def cannot_write(option: str, path: str, error: OSError) -> ConfigError:
    """The usage error for a file that cannot be opened for writing."""
    return ConfigError(option, path, f"cannot write there ({error.strerror or error})")


def _lost(option: str, path: str, error: OSError) -> None:
    log.error(
        "%s %s: could not write (%s); this file stops here, the run goes on",
        option,
        path,
        error.strerror or error,
    )


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

    def __init__(
        self, path: str, fmt: str, header: str = "", *, option: str = "--requests-file"
    ) -> None:
        self.path, self.option = path, option
        self._format = FORMATTERS[fmt]
        try:
            self._file: IO[str] = open(path, "w", encoding="utf-8")  # noqa: SIM115 - close()
        except OSError as error:  # checked before the run; a path can still go in between
            raise cannot_write(option, path, error) from None
        if header:
            self._file.write(header)
        self._buffer: list[Any] = []
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.failed = False
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
            if self.failed:
                return
            error = await asyncio.to_thread(self._write, batch)
            if error is not None:
                self._fail(error)

    def _write(self, batch: list[Any]) -> OSError | None:
        """Each batch reaches the disk at once: a full disk shows now, not at the close."""
        try:
            self._file.write(self._format(batch))
            self._file.flush()
        except OSError as error:
            return error
        return None

    def _fail(self, error: OSError) -> None:
        """Reported once; what users append from now on is dropped."""
        self.failed = True
        self.append = _drop
        self._buffer.clear()
        with contextlib.suppress(OSError):  # its unwritten buffer fails again; the file closes
            self._file.close()
        _lost(self.option, self.path, error)

    async def close(self) -> None:
        if self._task is not None:
            # Cancel only between flushes: a cancelled to_thread() leaves its thread writing,
            # and the file would be closed under it (the batch lost, the error unseen).
            async with self._lock:
                self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.flush()
        if self.failed:
            return
        try:
            self._file.close()
        except OSError as error:
            self._fail(error)


def _drop(item: Any) -> None:
    return None


def open_requests_log(path: str, fmt: str) -> BufferedLog:
    header = ",".join(REQUEST_LOG_FIELDS) + "\n" if fmt == "csv" else ""
    return BufferedLog(path, fmt, header, option="--requests-file")


def open_debug_log(path: str, fmt: str) -> BufferedLog:
    return BufferedLog(path, fmt, option="--debug-file")


def log_file_path(config: RunConfig) -> str | None:
    """Where -L/-g write the log, if anywhere."""
    if config.log_file or config.log_level:
        return config.log_file or DEFAULT_LOG_FILE
    return None


class LogFile(logging.FileHandler):
    """-L's handler: a write that fails (a full disk) is one error line on the console, not a
    traceback per record, and the file is closed; the run goes on."""

    def __init__(self, path: str) -> None:
        super().__init__(path, mode="w", encoding="utf-8")
        self.path, self.failed = path, False  # the path as typed (baseFilename is absolute)

    def emit(self, record: logging.LogRecord) -> None:
        if not self.failed:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        error = sys.exc_info()[1]
        if not isinstance(error, OSError) or self.failed:
            super().handleError(record)
            return
        self.failed = True  # first: the line below passes through this handler too
        with contextlib.suppress(OSError):
            self.close()
        _lost("--log-file", self.path, error)
