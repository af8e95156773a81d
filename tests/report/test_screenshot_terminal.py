"""tools/screenshot_terminal.py's own parts, without a demo or a browser: a terminal's screen
becomes HTML with its colours and bold, and a panel frame's elapsed time is read back."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from tests.conftest import ROOT
from tests.support.terminal import screen


def tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "screenshot_terminal", ROOT / "tools" / "screenshot_terminal.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_screen_becomes_html_with_its_colours_and_bold() -> None:
    shot = tool()
    output = "\x1b[1;32mgreen <b>\x1b[0m plain\r\n\x1b[38;5;244mgrey\x1b[0m\r\n\r\n"
    page = shot.screen_html(screen(output, 40, 6))
    body = page.split("<pre>", 1)[1].split("</pre>", 1)[0]
    rows = body.split("\n")
    assert rows == [  # blank rows at the bottom and trailing blanks left out
        f'<span style="color:{shot.PALETTE["green"]}"><b>green &lt;b&gt;</b></span>'
        f'<span style="color:{shot.FOREGROUND}"> plain</span>',
        '<span style="color:#808080">grey</span>',  # 256-colour 244, as pyte gives it
    ]
    assert f"background: {shot.BACKGROUND}" in page


def test_the_elapsed_time_of_the_latest_panel_frame_is_read_back() -> None:
    shot = tool()
    assert shot.shown_seconds("no panel yet") == 0
    frames = "│ time      0:03/0:20 ██░░ 15% │\n│ time      1:12/2:00 ███░ 60% │\n"
    assert shot.shown_seconds(frames) == 72
