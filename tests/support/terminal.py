"""``gaggle`` on a pseudo-terminal of a given size, and what a terminal would show of its output.

``PtyProcess`` starts the command with stdin, stdout and stderr on the slave side of a pty whose
size is set with TIOCSWINSZ (rich reads it as the terminal's), and collects everything written to
the master side. ``screen()`` replays that output through pyte, a VT100 emulator, to the screen a
user would be left with; ``plain_lines()`` is the output without escape sequences, split where
the terminal would start a new line, to measure widths.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Callable, Sequence

import pyte

from tests.conftest import ROOT, gaggle_command

ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07]*\x07|[()][0-9A-B]|[=>78])")


class PtyProcess:
    def __init__(
        self, *args: str, columns: int, rows: int = 24, command: Sequence[str] | None = None
    ) -> None:
        """``gaggle ARGS`` on the pty, or ``command`` instead when given (e.g. the demo script)."""
        self.columns, self.rows = columns, rows
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        # COLUMNS/LINES would override the pty's size; TERM says what the terminal can do
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        env["TERM"] = "xterm-256color"
        self.process = subprocess.Popen(
            list(command) if command is not None else gaggle_command(*args),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        os.close(slave)
        self.master = master
        self.output = bytearray()
        self._closed = False

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")

    def _read(self, timeout: float) -> bool:
        """Read what is there within ``timeout``; False once the child has closed the pty."""
        if self._closed:
            return False
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: every slave side is closed, the child is gone
            chunk = b""
        if not chunk:
            self._closed = True
            os.close(self.master)
            return False
        self.output += chunk
        return True

    def read_until(self, done: Callable[[str], bool], timeout: float) -> str:
        """Collect output until ``done(text so far)``; fails the test after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while not done(self.text):
            assert time.monotonic() < deadline, f"not seen within {timeout} s:\n{self.text[-3000:]}"
            if not self._read(0.1):
                assert done(self.text), f"the process ended first:\n{self.text[-3000:]}"
        return self.text

    def interrupt(self) -> None:
        """Ctrl-C: SIGINT to the process (its own session's leader, by its handle)."""
        self.process.send_signal(signal.SIGINT)

    def finish(self, timeout: float = 30) -> int:
        """Read to the end of the output and wait for the exit code; kill it if it overstays."""
        deadline = time.monotonic() + timeout
        try:
            while self._read(0.1):
                assert time.monotonic() < deadline, f"still running:\n{self.text[-3000:]}"
            return self.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        finally:
            self.close()

    def close(self) -> None:
        """Kill the process if it still runs (by its handle: our own) and close the pty."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if not self._closed:
            self._closed = True
            os.close(self.master)


def screen(output: str, columns: int, rows: int) -> pyte.Screen:
    """The screen a terminal of this size shows after ``output``."""
    shown = pyte.Screen(columns, rows)
    pyte.Stream(shown).feed(output)
    return shown


def plain(output: str) -> str:
    return ESCAPE.sub("", output)


def plain_lines(output: str) -> list[str]:
    """The output as a terminal lays it out in lines (escapes gone; CR and LF both end one)."""
    return re.split(r"[\r\n]", plain(output))
