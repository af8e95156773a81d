"""Make docs/live-page.png, the live web page README shows: `make demo` run with ``--web``.

    python tools/screenshot_web.py [--out docs/live-page.png] [--at 12]

It runs examples/demo.sh with ``--web 127.0.0.1:PORT`` (a free port), waits until the run has
gone ``--at`` seconds, and screenshots the page in headless Chromium (tests/support/browser.py)
once it has redrawn from the run a few times. The demo then runs to its end, so its site and
report go as they came.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "worker")]  # tests' helpers and the tree's own gaggle

from tests.support.browser import open_page  # noqa: E402

START_TIMEOUT = 30.0
DEMO_TIMEOUT = 90.0
# Waits (bounded) for two redraws from the run, so the screenshot shows the page live.
REDRAWN = """(async () => {
  const end = Date.now() + 10000;
  const updates = () => Number(document.body.dataset.updates || 0);
  while (updates() < 2 && Date.now() < end) await new Promise(r => setTimeout(r, 100));
  return updates();
})()"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def run_seconds(port: int) -> float:
    """How long the demo's run has gone, from its control API (-1 before it answers)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=2) as answer:
            elapsed: float = json.load(answer)["run_time"]["elapsed"]
            return elapsed
    except (urllib.error.URLError, OSError, KeyError, ValueError):
        return -1.0


def capture(at: float, size: tuple[int, int], folder: Path) -> bytes:
    port = free_port()
    env = {
        **os.environ,
        "GAGGLE_PYTHON": sys.executable,
        "GAGGLE_DEMO_REPORT": str(folder / "report.html"),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "worker"), os.environ.get("PYTHONPATH", "")]),
    }
    demo = subprocess.Popen(
        ["bash", "examples/demo.sh", "--web", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT + at
        while run_seconds(port) < at:
            if demo.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the demo's run did not reach {at} s:\n{demo.communicate()[1]}")
            time.sleep(0.2)
        page = open_page(f"http://127.0.0.1:{port}/", REDRAWN, size=size)
        _, err = demo.communicate(timeout=DEMO_TIMEOUT)
    finally:
        if demo.poll() is None:
            demo.kill()  # our own child, by its handle
            demo.wait()
    if demo.returncode != 0:
        raise SystemExit(f"the demo exited {demo.returncode}:\n{err[-3000:]}")
    if page.errors or page.value < 2:
        raise SystemExit(f"the page did not redraw cleanly: {page.value} updates, {page.errors}")
    return page.screenshot


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "live-page.png")
    parser.add_argument("--at", type=float, default=10, help="seconds into the run (default 10)")
    parser.add_argument("--width", type=int, default=1100)
    parser.add_argument("--height", type=int, default=1500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gaggle-screenshot-") as temporary:
        png = capture(args.at, (args.width, args.height), Path(temporary))
    args.out.write_bytes(png)
    print(f"{args.out}: {len(png):,} bytes, the live page at {args.at:g} s into the demo")
    return 0


if __name__ == "__main__":
    sys.exit(main())
