"""Changing a Running LoadTest: the spec fields a manager takes live, relayed to its control API.

``kubectl patch lt NAME --type merge -p '{"spec":{"users":200}}'`` on a Running LoadTest changes
the running test: the handler (handlers.updated) maps the spec's difference to control API calls
(``live_calls``), makes them on the manager Service's metrics port with the LoadTest's token
(``relay``), and records each in ``status.changes`` and an Event. ``users``/``hatchRate`` set the
users, ``plan`` replaces the plan, ``runTime`` (the whole run's time) ends the run that long
after it started. Any other field changed with them refuses the whole change, as before.

The token: the operator may not read Secrets (a cluster-wide get would read them all), so it
derives each LoadTest's token from a key of its own and the LoadTest's uid (HMAC-SHA256): the
token Secret it creates holds that, and the operator computes it again to call. The key is the
install's (key.py: a Secret beside the Lease, the same for a restarted operator and for every
replica; ``gaggle-operator run`` sets it with ``use_key``), else ``$GAGGLE_OPERATOR_KEY``, else
one made at import (plain ``kopf run``: a run begun before a restart then answers 401, and the
change is recorded as failed).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from gaggle.errors import ConfigError
from gaggle.kits import METRICS_PORT
from gaggle.options import parse_duration
from gaggle_operator.children import names

LIVE_FIELDS = frozenset({"users", "hatchRate", "runTime", "plan", "arrivalRate"})
# why the others are refused
LIVE = "a Running test takes arrivalRate, hatchRate, plan, runTime and users alone"
KEY = os.environ.get("GAGGLE_OPERATOR_KEY", "").encode() or secrets.token_bytes(32)
TIMEOUT = 5.0  # seconds for one call: a handler must not hang on an unreachable manager
Body = dict[str, Any]


def use_key(key: bytes) -> None:
    """The install's key (key.py), before any LoadTest is handled."""
    global KEY
    KEY = key


def token_for(uid: str, key: bytes | None = None) -> str:
    """The LoadTest's gRPC and control token: the same whenever the operator computes it."""
    digest = hmac.new(KEY if key is None else key, uid.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def manager_url(loadtest: str, namespace: str) -> str:
    """The manager Service's metrics port, where its control API answers."""
    return f"http://{names(loadtest)['service']}.{namespace}.svc:{METRICS_PORT}"


def changed_fields(old: Body | None, new: Body | None) -> set[str]:
    old, new = old or {}, new or {}
    return {key for key in set(old) | set(new) if old.get(key) != new.get(key)}


@dataclass(frozen=True, slots=True)
class Call:
    """One control API call for a changed spec field."""

    field: str
    path: str
    body: Body
    before: object
    after: object

    @property
    def text(self) -> str:
        """What the Event says: ``users 50 → 200``."""
        return f"{self.field} {_shown(self.before)} → {_shown(self.after)}"


def _shown(value: object) -> str:
    return "(none)" if value is None else str(value)


def live_calls(old: Body, new: Body, elapsed: float) -> list[Call]:
    """The calls that make the running test what ``new`` says; ``elapsed``: the run's seconds
    so far (``runTime`` is the whole run's time, the API sets what remains)."""
    changed, calls = changed_fields(old, new), []
    if "plan" in changed and new.get("plan"):
        calls.append(Call("plan", "/api/plan", {"plan": new["plan"]}, old.get("plan"), new["plan"]))
    elif "arrivalRate" in changed and new.get("arrivalRate") is not None:
        rate = {"arrival_rate": new["arrivalRate"]}
        before, after = old.get("arrivalRate"), new["arrivalRate"]
        calls.append(Call("arrivalRate", "/api/arrival-rate", rate, before, after))
    elif changed & {"users", "hatchRate"} and new.get("users") is not None:
        body: Body = {"users": new["users"]}
        if new.get("hatchRate") is not None:
            body["hatch_rate"] = new["hatchRate"]
        field = "users" if "users" in changed else "hatchRate"
        calls.append(Call(field, "/api/users", body, old.get(field), new.get(field)))
    if "runTime" in changed and new.get("runTime") is not None:
        try:
            seconds = parse_duration("runTime", new["runTime"])
        except ConfigError:  # parse_spec refused it already; be safe
            seconds = 0.0
        remaining = {"remaining": max(0.0, seconds - elapsed)}
        calls.append(
            Call("runTime", "/api/run-time", remaining, old.get("runTime"), new["runTime"])
        )
    return calls


@dataclass(frozen=True, slots=True)
class Outcome:
    call: Call
    error: str  # "" when the manager applied it

    @property
    def reason(self) -> str:
        return "LiveChangeFailed" if self.error else "LiveChange"

    @property
    def message(self) -> str:
        """The Event's: ``users 50 → 200``, and why it failed if it did."""
        return f"{self.call.text}: {self.error}" if self.error else self.call.text

    def record(self, at: str) -> Body:
        """An entry of ``status.changes``."""
        result = "applied" if not self.error else f"failed: {self.error}"
        return {"at": at, "field": self.call.field, "change": self.call.text, "result": result}


def _request(base: str, token: str, method: str, path: str, body: Body | None = None) -> Body:
    """One call; raises ``RelayError`` with the manager's own words."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            answer: Body = json.load(response)
            return answer
    except urllib.error.HTTPError as error:
        try:
            words = str(json.load(error).get("error", error.reason))
        except ValueError:
            words = str(error.reason)
        raise RelayError(f"the manager answered {error.code}: {words}") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise RelayError(f"cannot reach the manager at {base}: {error}") from None


class RelayError(Exception):
    """A call the manager refused or could not take."""


def relay(base: str, token: str, old: Body, new: Body) -> list[Outcome]:
    """Make the running test what ``new`` says, call by call; what each came to."""
    elapsed = 0.0
    if "runTime" in changed_fields(old, new):
        try:
            elapsed = float(_request(base, token, "GET", "/api/status")["run_time"]["elapsed"])
        except RelayError as error:
            return [Outcome(call, str(error)) for call in live_calls(old, new, 0.0)]
    outcomes = []
    for call in live_calls(old, new, elapsed):
        try:
            _request(base, token, "POST", call.path, call.body)
        except RelayError as error:
            outcomes.append(Outcome(call, str(error)))
        else:
            outcomes.append(Outcome(call, ""))
    return outcomes
