"""What ``await self.get(...)`` returns: the HTTP exchange plus the metric record it produced."""

from __future__ import annotations

import codecs
import json as jsonlib
from typing import Any

from gaggle.http import Exchange, Headers
from gaggle.metrics import RequestRecord


class Response:
    """Status, headers and body of the final response (after redirects).

    ``record`` is the request's metric record; ``set_failure``/``set_success`` replace it with an
    updated one. ``ok`` is the recorded verdict, so it follows those calls too.
    """

    __slots__ = ("_exchange", "record")

    def __init__(self, exchange: Exchange, record: RequestRecord) -> None:
        self._exchange = exchange
        self.record = record

    @property
    def status(self) -> int:
        """HTTP status; 0 when no response arrived (see ``error``)."""
        return self._exchange.status

    @property
    def headers(self) -> Headers:
        """Case-insensitive; ``getall`` reads every value of a repeated header (Set-Cookie)."""
        return self._exchange.headers

    @property
    def body(self) -> bytes:
        return self._exchange.body

    @property
    def text(self) -> str:
        return self._exchange.body.decode(self._charset(), errors="replace")

    def json(self) -> Any:
        return jsonlib.loads(self._exchange.body)

    @property
    def url(self) -> str:
        """The final URL (differs from the requested one after a redirect)."""
        return self._exchange.final_url

    @property
    def redirected(self) -> bool:
        return self._exchange.redirected

    @property
    def error(self) -> str:
        """Why no response arrived (refused, reset, timeout…); empty when one did."""
        return self._exchange.error

    @property
    def ok(self) -> bool:
        return self.record.success

    def _charset(self) -> str:
        content_type = self.headers.get("Content-Type", "")
        for part in content_type.split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.lower() == "charset" and value:
                return _known(value.strip('"'))
        return "utf-8"

    def __repr__(self) -> str:
        return f"<Response {self.record.method} {self.url} [{self.status}]>"


def _known(charset: str) -> str:
    """A charset Python knows, else UTF-8 (as browsers fall back): a server's typo in
    ``charset=`` must not make ``text`` raise into the task."""
    try:
        codecs.lookup(charset)
    except LookupError:
        return "utf-8"
    return charset
