"""Make docs/terminal.png, the live view README's Quick start shows: `make demo` as a user sees it.

    python tools/screenshot_terminal.py [--out docs/terminal.png] [--at 12]   # `make screenshot`

It runs examples/demo.sh on a pseudo-terminal (tests/support/terminal.py), replays what the demo
wrote up to the panel frame showing ``--at`` seconds through pyte (a VT100 emulator) to the screen a
user would see then, writes that screen as HTML — monospace, dark, with the colours and bold
pyte kept — and screenshots it with headless Chromium (tests/support/browser.py), cropped to
the text.
The demo then runs to its end, so its site and report go as they came.
"""

from __future__ import annotations

import argparse
import html
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "worker")]  # tests' helpers and the tree's own gaggle

import pyte  # noqa: E402

from tests.support.browser import open_page  # noqa: E402
from tests.support.terminal import PtyProcess, plain, screen  # noqa: E402

BACKGROUND, FOREGROUND = "#1d1f21", "#d8dadb"
# pyte's names for the 16 ANSI colours; 256-colour and true-colour cells come as hex already
PALETTE = {
    "black": "#2d2f31",
    "red": "#e0605c",
    "green": "#8fc25a",
    "brown": "#e0b85c",
    "blue": "#6a9fd8",
    "magenta": "#b58ad6",
    "cyan": "#5cc2c2",
    "white": "#d8dadb",
    "brightblack": "#70757a",
    "brightred": "#ff7a75",
    "brightgreen": "#aee07a",
    "brightbrown": "#ffd67a",
    "brightyellow": "#ffd67a",
    "brightblue": "#8cbcf0",
    "brightmagenta": "#d0a8f0",
    "brightcyan": "#7ae0e0",
    "brightwhite": "#ffffff",
}
HEX = re.compile(r"[0-9a-fA-F]{6}")
ELAPSED = re.compile(r"│ time\s+(\d+):(\d\d)/")
STYLE = f"""
html, body {{ margin: 0; background: {BACKGROUND}; }}
pre {{ display: inline-block; margin: 0; padding: 14px 18px; color: {FOREGROUND};
  font: 15px/18px "DejaVu Sans Mono", "Liberation Mono", monospace; }}
b {{ font-weight: bold; }}
"""
SIZE_PROBE = """(() => { const r = document.querySelector("pre").getBoundingClientRect();
  return [Math.ceil(r.width), Math.ceil(r.height)]; })()"""


def colour(name: str, default: str) -> str:
    if name == "default":
        return default
    if HEX.fullmatch(name):
        return f"#{name.lower()}"
    return PALETTE.get(name, default)


def _runs(line: dict[int, pyte.screens.Char], columns: int) -> Iterator[tuple[str, str, bool]]:
    """(text, css, bold) of each run of cells that look alike, trailing blanks dropped."""
    cells = [line[x] for x in range(columns)]
    while cells and cells[-1].data == " " and cells[-1].bg == "default":
        cells.pop()
    text, css, bold = "", "", False
    for cell in cells:
        fg, bg = colour(cell.fg, FOREGROUND), colour(cell.bg, BACKGROUND)
        if cell.reverse:
            fg, bg = bg, fg
        cell_css = f"color:{fg}" + (f";background:{bg}" if bg != BACKGROUND else "")
        if text and (cell_css, cell.bold) != (css, bold):
            yield text, css, bold
            text = ""
        text, css, bold = text + cell.data, cell_css, cell.bold
    if text:
        yield text, css, bold


def screen_html(shown: pyte.Screen) -> str:
    """The screen as a page: one <pre>, blank rows at the bottom left out."""
    rows = []
    for y in range(shown.lines):
        spans = []
        for text, css, bold in _runs(shown.buffer[y], shown.columns):
            inner = f"<b>{html.escape(text)}</b>" if bold else html.escape(text)
            spans.append(f'<span style="{css}">{inner}</span>')
        rows.append("".join(spans))
    while rows and not rows[-1]:
        rows.pop()
    body = "\n".join(rows)
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<style>{STYLE}</style></head><body><pre>{body}</pre></body></html>"
    )


def shown_seconds(output: str) -> int:
    """The latest elapsed time a panel frame in ``output`` shows (0 before the first)."""
    found = ELAPSED.findall(plain(output))
    return max((int(m) * 60 + int(s) for m, s in found), default=0)


def capture(columns: int, rows: int, at: int, folder: Path) -> pyte.Screen:
    """The demo's screen once its panel shows ``at`` seconds; the demo then runs to its end."""
    os.environ.update(
        GAGGLE_PYTHON=sys.executable,
        GAGGLE_DEMO_REPORT=str(folder / "report.html"),
        PYTHONPATH=os.pathsep.join([str(ROOT / "worker"), os.environ.get("PYTHONPATH", "")]),
    )
    demo = PtyProcess(columns=columns, rows=rows, command=["bash", "examples/demo.sh"])
    try:
        output = demo.read_until(lambda text: shown_seconds(text) >= at, timeout=60)
        code = demo.finish(timeout=60)
    finally:
        demo.close()
    if code != 0:
        raise SystemExit(f"the demo exited {code}:\n{plain(demo.text)[-3000:]}")
    return screen(output, columns, rows)


def screenshot(page: str, folder: Path) -> bytes:
    """A PNG of ``page`` cropped to its text: one load to measure it, one at that size."""
    path = folder / "terminal.html"
    path.write_text(page, encoding="utf-8")
    width, height = open_page(path.as_uri(), SIZE_PROBE).value
    shot = open_page(path.as_uri(), "0", size=(width, height)).screenshot
    return shot


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "terminal.png")
    parser.add_argument("--columns", type=int, default=96)
    parser.add_argument("--rows", type=int, default=26)
    parser.add_argument("--at", type=int, default=12, help="seconds into the run (default 12)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gaggle-screenshot-") as temporary:
        folder = Path(temporary)
        shown = capture(args.columns, args.rows, args.at, folder)
        png = screenshot(screen_html(shown), folder)
    args.out.write_bytes(png)
    print(f"{args.out}: {len(png):,} bytes, the demo's screen at {args.at} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
