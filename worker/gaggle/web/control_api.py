"""The control API: ``/api/…`` on the metrics port, JSON in and out, to change a running test.

Here is only HTTP: who may call (a bearer token, or a loopback bind when there is none), reading
and checking a request's JSON, and writing the answer. What a change does to the run is the
``Controls`` the session hands in (``gaggle.run.steering.Steering``), so this layer stays below it.
A bad value is a 400 naming the field, the value and what is allowed — a body that is not UTF-8
JSON, NaN, an infinity, a number beyond the option's bound (``options.converters``) — and a
change the run cannot take now is a 409 saying why; neither disturbs the run.

Why a token or loopback: a change can start thousands of users, so a metrics port bound beyond
this machine (a manager's default ``0.0.0.0:9646``) answers /api only to whoever holds the token.
Why JSON and same-origin alone, token or not: another site's page open in a browser here must
not steer the run (``same_origin``); a POST must say ``Content-Type: application/json``, which a
form cannot, and a cross-site fetch cannot without a CORS preflight nobody here answers.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from gaggle.errors import ConfigError
from gaggle.options import (
    ARRIVALS_PER_RUN,
    ARRIVALS_PER_RUN_WHY,
    USERS_PER_RUN,
    USERS_PER_RUN_WHY,
    beyond,
    most_text,
    parse_duration,
    plan_text,
    rate,
)
from gaggle.web.same_origin import Sites

# aiohttp is imported where a request is answered: every run's steering raises ControlError, and
# a run that serves no API must not load aiohttp (~16 MiB).
if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger(__name__)

ControlReply = dict[str, Any]  # a JSON object: what the API answers (a call's body alike)
CHANGES = ("users", "plan", "run_time", "arrival_rate", "stop")  # what a change may be


class ControlError(Exception):
    """Why a call was refused: its HTTP status, and the field, value and what is allowed."""

    def __init__(
        self, status: int, field: str, value: object, allowed: str, message: str = ""
    ) -> None:
        self.status, self.field, self.value, self.allowed = status, field, value, allowed
        super().__init__(message or f"{field}: {value!r} is not allowed; {allowed}")

    def body(self) -> ControlReply:
        """The answer's JSON: standard JSON, so a NaN or an infinity refused shows as its text."""
        plain = isinstance(self.value, str | int | None) or (
            isinstance(self.value, float) and math.isfinite(self.value)
        )
        shown = self.value if plain else repr(self.value)
        return {"error": str(self), "field": self.field, "value": shown, "allowed": self.allowed}


class Controls(Protocol):
    """What the API can do to a run; each change returns the status after it."""

    def status(self) -> ControlReply: ...

    def set_users(self, users: int, hatch_rate: float | None) -> ControlReply: ...

    def set_plan(self, plan: str) -> ControlReply: ...

    def set_run_time(self, remaining: float) -> ControlReply: ...

    def set_arrival_rate(self, per_second: float) -> ControlReply: ...

    def stop(self, reason: str) -> ControlReply: ...


def _field(body: ControlReply, name: str, required: bool = True) -> object:
    if name not in body and required:
        raise ControlError(400, name, None, f"give {name!r} in the JSON body")
    return body.get(name)


def _whole(name: str, value: object, most: int, why: str) -> int:
    allowed = "use a whole number ≥ 0"
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ControlError(400, name, value, allowed)
    if value > most:
        raise ControlError(400, name, value, f"{allowed} and {most_text(most, why)}")
    return value


def _checked(name: str, convert: Callable[[str, object], Any], value: object) -> Any:
    """A value checked by the option's own converter, its message under the API's field name."""
    try:
        return convert(name, value)
    except ConfigError as error:
        raise ControlError(400, name, value, error.allowed or str(error)) from None


def _plan(value: object) -> str:
    try:
        return plan_text("plan", value)
    except ConfigError as error:  # its message names the bad stage: keep it whole
        raise ControlError(400, "plan", value, error.allowed, str(error)) from None


def _users(controls: Controls, body: ControlReply) -> ControlReply:
    users = _whole("users", _field(body, "users"), USERS_PER_RUN, USERS_PER_RUN_WHY)
    given = _field(body, "hatch_rate", required=False)
    hatch_rate = None if given is None else float(_checked("hatch_rate", rate, given))
    return controls.set_users(users, hatch_rate)


def _run_time(controls: Controls, body: ControlReply) -> ControlReply:
    remaining = float(_checked("remaining", parse_duration, _field(body, "remaining")))
    return controls.set_run_time(remaining)


def _arrival_rate(controls: Controls, body: ControlReply) -> ControlReply:
    value = _field(body, "arrival_rate")
    allowed = "use a number of arrivals per second ≥ 0"
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ControlError(400, "arrival_rate", value, allowed)  # NaN is not ≥ 0
    if beyond(value, ARRIVALS_PER_RUN):
        most = most_text(ARRIVALS_PER_RUN, ARRIVALS_PER_RUN_WHY)
        raise ControlError(400, "arrival_rate", value, f"{allowed} and {most}")
    return controls.set_arrival_rate(float(value))


def _stop(controls: Controls, body: ControlReply) -> ControlReply:
    reason = _field(body, "reason", required=False)
    return controls.stop(str(reason) if reason else "stopped through the control API")


CHANGERS: dict[str, Callable[[Controls, ControlReply], ControlReply]] = {
    "/api/users": _users,
    "/api/plan": lambda controls, body: controls.set_plan(_plan(_field(body, "plan"))),
    "/api/run-time": _run_time,
    "/api/arrival-rate": _arrival_rate,
    "/api/stop": _stop,
}


def access(token: str, loopback: bool) -> str:
    """Who may call: ``"token"`` (whoever sends it), ``"open"`` (a loopback bind without a
    token) or ``"off"`` (beyond loopback without one). The live page shows its controls by it."""
    return "token" if token else "open" if loopback else "off"


def refusal(request: web.Request, token: str, loopback: bool) -> web.Response | None:
    """The answer to a caller who may not use the API; None when it may."""
    from aiohttp import web

    allowed = access(token, loopback)
    if allowed == "open":
        return None
    if allowed == "off":
        why = (
            "the control API is off: its port is bound beyond loopback and no token is "
            "set (--control-token or $GAGGLE_CONTROL_TOKEN; a manager: --gaggle-token)"
        )
        return web.json_response({"error": why}, status=403)
    given = request.headers.get("Authorization", "")
    scheme, _, credential = given.partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(credential.encode(), token.encode()):
        return None
    why = "missing or wrong token: send 'Authorization: Bearer <token>'"
    return web.json_response(
        {"error": why}, status=401, headers={"WWW-Authenticate": 'Bearer realm="gaggle"'}
    )


def _own_site(request: web.Request, sites: Sites) -> None:
    """Refuse (403) a request from another site's page, or by a name DNS rebinding could use."""
    refused = sites.refusal(request.headers.get("Host"), request.headers.get("Origin"))
    if refused is not None:
        raise ControlError(403, refused.field, refused.value, refused.allowed)


def _json_type(request: web.Request) -> None:
    """Refuse (415) a POST that does not say its body is JSON (a form, text/plain)."""
    if request.content_type != "application/json":  # aiohttp: lower case, no parameters
        given = request.headers.get("Content-Type")
        allowed = "send the JSON body with 'Content-Type: application/json' (curl: --json)"
        raise ControlError(415, "Content-Type", given, allowed)


async def _body(request: web.Request) -> ControlReply:
    """The body's JSON object; JSON is UTF-8 (RFC 8259), whatever charset the call names."""
    raw = await request.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        shown = raw[:200].decode("utf-8", "replace")
        raise ControlError(400, "body", shown, "send a JSON object in UTF-8") from None
    if not text.strip():
        return {}
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, an int of 4,300+ digits, nesting too deep
        raise ControlError(400, "body", text[:200], "send a JSON object") from None
    if not isinstance(body, dict):
        raise ControlError(400, "body", text[:200], "send a JSON object")
    return body


def add_control_routes(
    app: web.Application, controls: Controls, token: str, loopback: bool, sites: Sites
) -> None:
    """GET /api/status and the POSTs of ``CHANGERS`` on ``app``, for ``sites`` alone."""
    from aiohttp import web

    def guarded(
        handle: Callable[[web.Request], Awaitable[ControlReply]],
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def answer(request: web.Request) -> web.Response:
            try:
                _own_site(request, sites)  # first: another site learns nothing, token or not
                refused = refusal(request, token, loopback)
                if refused is not None:
                    return refused
                if request.method == "POST":
                    _json_type(request)
                return web.json_response(await handle(request))
            except ControlError as error:
                log.warning("control API: %s %s refused: %s", request.method, request.path, error)
                return web.json_response(error.body(), status=error.status)

        return answer

    async def status(request: web.Request) -> ControlReply:
        return controls.status()

    app.router.add_get("/api/status", guarded(status))
    for path, change in CHANGERS.items():

        async def handle(request: web.Request, change: Any = change) -> ControlReply:
            result: ControlReply = change(controls, await _body(request))
            return result

        app.router.add_post(path, guarded(handle))
