"""The run's one HTTP app: /metrics (Prometheus), /summary, the control API and the live page,
on ``--metrics-bind`` and ``--web``.

- ``app``: the aiohttp app and its server, serving whatever the run enables.
- ``prometheus``: the collector that turns the run's totals into metric families.
- ``control_api``: /api/* — read the run's status, change its users, rate, plan or run time.
- ``same_origin``: which sites may call it — the server's own pages and clients that are no
  browser's page, never another site's (``Host``, ``Origin``).
- ``live_page``: the report as a page that refreshes from the run.
"""

from typing import TYPE_CHECKING, Any

from gaggle.web.control_api import ControlError, ControlReply

if TYPE_CHECKING:
    from gaggle.web.app import listens_of, serve


def __getattr__(name: str) -> Any:
    """``app`` (aiohttp's server, prometheus_client: ~20 MiB) is imported when it is asked for:
    every run steers (``ControlError``), only a run with --metrics-bind or --web serves."""
    if name in ("listens_of", "serve"):
        from gaggle.web import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ControlError", "ControlReply", "listens_of", "serve"]
