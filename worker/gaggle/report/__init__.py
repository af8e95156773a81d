"""What a run shows and writes: the terminal (tables, live view, status line) and files
(requests and debug logs, the HTML/JSON report). Reporters read records and snapshots only.

- ``tables``: Goose's console tables; ``live``: the live panel; ``figures``: the so-far figures
  and status line the panel, the page and the operator share.
- ``logs``: the requests log, the debug log and the log file; a write that fails mid-run is
  one error line and the run goes on (``recorder.check_output_paths`` refuses bad paths first).
- ``recorder``, ``timeline``, ``model``, ``html``: the run sampled each second into the report's
  data model, written as JSON or a self-contained HTML page; ``markdown`` and ``junit``: the
  same data as a CI job summary and as JUnit XML for CI test reporters.
- ``baseline``, ``comparison``: ``--baseline``, a previous run's JSON report, read and checked;
  this run compared with it (the tables, the reports and the regression rules show it).

Serving the run over HTTP (/metrics, /summary, the control API, the live page) is ``web``'s.
"""

from gaggle.report.baseline import Baseline, load_baseline
from gaggle.report.comparison import compare
from gaggle.report.figures import FigureSampler, LiveInputs, Progress
from gaggle.report.html import LiveParts, asset, render_html, summary_section, tables_section
from gaggle.report.junit import render_junit
from gaggle.report.live import NoView, View, keep_showing, open_view
from gaggle.report.logs import (
    BufferedLog,
    LogFile,
    log_file_path,
    open_debug_log,
    open_requests_log,
)
from gaggle.report.markdown import render_markdown
from gaggle.report.model import plain, test_file_of
from gaggle.report.recorder import NoReport, Report, SoFar, check_output_paths, open_report
from gaggle.report.tables import TableOptions, print_tables, print_verdicts

__all__ = [
    "Baseline",
    "BufferedLog",
    "FigureSampler",
    "LiveInputs",
    "LiveParts",
    "LogFile",
    "NoReport",
    "NoView",
    "Progress",
    "Report",
    "SoFar",
    "TableOptions",
    "View",
    "asset",
    "check_output_paths",
    "compare",
    "keep_showing",
    "load_baseline",
    "log_file_path",
    "open_debug_log",
    "open_report",
    "open_requests_log",
    "open_view",
    "plain",
    "print_tables",
    "print_verdicts",
    "render_html",
    "render_junit",
    "render_markdown",
    "summary_section",
    "tables_section",
    "test_file_of",
]
