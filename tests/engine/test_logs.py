"""The buffered log writer loses nothing, even when the disk is slow as the run ends."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from gaggle.report.logs import FLUSH_INTERVAL, BufferedLog


class SlowDiskLog(BufferedLog):
    """The real writer with its first write slowed down: the stand-in for a slow disk (no
    slow disk exists here), so that ``close()`` arrives while a flush is still writing."""

    def __init__(self, path: str) -> None:
        super().__init__(path, "raw")
        self.writes = 0

    def _write(self, batch: list[object]) -> None:
        self.writes += 1
        if self.writes == 1:
            time.sleep(0.3)
        super()._write(batch)


def test_closing_during_a_slow_flush_keeps_every_line(tmp_path: Path) -> None:
    path = tmp_path / "requests.raw"

    async def scenario() -> None:
        log = SlowDiskLog(str(path))
        log.start()
        for item in range(10):
            log.append(item)
        await asyncio.sleep(FLUSH_INTERVAL + 0.05)  # the first flush is now in its thread
        for item in range(10, 15):
            log.append(item)
        await log.close()

    asyncio.run(scenario())
    assert path.read_text().splitlines() == [str(i) for i in range(15)]
