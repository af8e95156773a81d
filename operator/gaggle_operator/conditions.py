"""``status.conditions`` as Kubernetes API conventions have them: one entry per type, with
``lastTransitionTime`` moving only when the status changes (so `kubectl wait --for=condition=...`
and dashboards read them the usual way)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def now() -> str:
    """An RFC 3339 instant in UTC, as the API server writes them."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def set_condition(
    conditions: list[dict[str, Any]], kind: str, status: str, reason: str, message: str
) -> list[dict[str, Any]]:
    """A new list with condition ``kind`` set; the others are kept as they were."""
    stamp = now()
    updated: list[dict[str, Any]] = []
    found = False
    for condition in conditions:
        if condition.get("type") != kind:
            updated.append(dict(condition))
            continue
        found = True
        changed = condition.get("status") != status
        updated.append(
            {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "lastTransitionTime": stamp
                if changed
                else condition.get("lastTransitionTime", stamp),
            }
        )
    if not found:
        updated.append(
            {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "lastTransitionTime": stamp,
            }
        )
    return updated
