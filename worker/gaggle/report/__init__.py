"""What a run shows and writes: the terminal (tables, live view, status line) and files
(requests and debug logs, the HTML/JSON report). Reporters read records and snapshots only.

- ``tables``: Goose's console tables; ``live``: the live panel; ``figures``: the so-far figures
  and status line the panel, the page and the operator share.
- ``logs``: the requests, tasks, errors and debug logs.
- ``recorder``, ``timeline``, ``model``, ``html``: the run sampled each second into the report's
  data model, written as JSON or a self-contained HTML page.

Serving the run over HTTP (/metrics, /summary, the control API, the live page) is ``web``'s.
"""
