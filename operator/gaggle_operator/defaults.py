"""The operator's defaults for every LoadTest, read from its environment (the Helm chart's
``defaults`` values become these variables):

- ``GAGGLE_MANAGER_RESOURCES`` / ``GAGGLE_WORKER_RESOURCES``: JSON of a container's
  ``resources`` (``{"requests": {"cpu": "500m"}, "limits": {"memory": "1Gi"}}``), given to the
  ``gaggle`` container of the manager / worker pods;
- ``GAGGLE_CLEANUP_POLICY``: ``Never`` (the default), ``OnSuccess`` or ``Always``;
- ``GAGGLE_TTL_SECONDS_AFTER_FINISHED``: a whole number ≥ 0 (the default 0);
- ``GAGGLE_IMAGE_PULL_SECRETS``: Secret names, comma-separated: every manager and worker pod
  pulls its image with them (a private registry), beside any its LoadTest's template names.

Unset or empty means "no default". Precedence: the LoadTest always wins. Its ``template``
overlays ours field by field (a template's ``limits.cpu`` replaces only our ``limits.cpu``; our
``requests`` stay), and each ``cleanup`` field it gives replaces only that field (a LoadTest with
``cleanup: {policy: Always}`` waits the default TTL).

A bad value stops the operator at startup (``from_env`` raises ``DefaultsError`` naming the
variable, the value and what is allowed) rather than being logged and ignored. Why: ignoring it
would run every LoadTest without the limits or the cleanup its installer asked for, and the only
trace would be a log line nobody reads; a crash-looping operator pod shows the message at
``helm install`` / ``helm upgrade`` time, before anything runs wrongly. The chart's values schema
refuses most bad values even earlier.

Pure functions: no Kubernetes, no kopf; tests/operator/test_defaults.py checks them directly.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

MANAGER_RESOURCES = "GAGGLE_MANAGER_RESOURCES"
WORKER_RESOURCES = "GAGGLE_WORKER_RESOURCES"
CLEANUP_POLICY = "GAGGLE_CLEANUP_POLICY"
TTL_SECONDS = "GAGGLE_TTL_SECONDS_AFTER_FINISHED"
PULL_SECRETS = "GAGGLE_IMAGE_PULL_SECRETS"
_SECRET_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")  # a DNS-1123 subdomain
CLEANUP_POLICIES = ("Never", "OnSuccess", "Always")
CONTAINER = "gaggle"  # the container the defaults go to (children.CONTAINER names it too)
Resources = dict[str, dict[str, str]]

# Kubernetes' quantity grammar (k8s.io/apimachinery resource.Quantity), without a sign: a
# resource is never negative.
_QUANTITY = re.compile(
    r"(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+|[mkMGTPE])?"
)
_SCALE = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
# cpu, memory, ephemeral-storage, hugepages-<size>, or an extended resource: <domain>/<name>.
_RESOURCE_NAME = re.compile(
    r"cpu|memory|ephemeral-storage|hugepages-[0-9]+(?:Ki|Mi|Gi|Ti|Pi|Ei|[kMGTPE])?"
    r"|[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?"
)
NAMES = "cpu, memory, ephemeral-storage, hugepages-<size> or an extended resource <domain>/<name>"
EXAMPLES = "a Kubernetes quantity such as 500m, 2, 256Mi or 1Gi"


class DefaultsError(ValueError):
    """``<VARIABLE>: <value> is not allowed; <what is allowed>``: one line, at startup."""

    def __init__(self, variable: str, value: str, allowed: str) -> None:
        self.variable, self.value, self.allowed = variable, value, allowed
        super().__init__(f"{variable}: {value!r} is not allowed; {allowed}")


@dataclass(frozen=True, slots=True)
class Defaults:
    """What a LoadTest gets for what it leaves out; ``Defaults()`` changes nothing."""

    manager_resources: Resources = field(default_factory=dict)
    worker_resources: Resources = field(default_factory=dict)
    cleanup_policy: str = "Never"
    cleanup_ttl: int = 0
    image_pull_secrets: tuple[str, ...] = ()

    def template(self, role: str) -> dict[str, Any]:
        """A pod template with the role's default resources and the pull secrets ({} when
        there are none)."""
        resources = self.manager_resources if role == "manager" else self.worker_resources
        spec: dict[str, Any] = {}
        if resources:
            spec["containers"] = [{"name": CONTAINER, "resources": resources}]
        if self.image_pull_secrets:
            spec["imagePullSecrets"] = [{"name": name} for name in self.image_pull_secrets]
        return {"spec": spec} if spec else {}


def quantity(value: object) -> Decimal | None:
    """The amount a Kubernetes quantity stands for (``"500m"`` → 0.5), or None if it is none."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return Decimal(str(value)) if math.isfinite(value) and value >= 0 else None
    match = _QUANTITY.fullmatch(value.lstrip("+")) if isinstance(value, str) else None
    if match is None:
        return None
    suffix = match["suffix"] or ""
    if suffix[:1] in ("e", "E") and len(suffix) > 1:
        return Decimal(match["number"]) * Decimal(10) ** int(suffix[1:])
    return Decimal(match["number"]) * _SCALE[suffix]


def resources_problem(resources: object, claims: bool = False) -> str | None:
    """What is wrong with a container's ``resources`` object, or None. Checks its shape
    (``requests`` / ``limits`` of resource name → quantity), each quantity, and that no request
    exceeds its limit (Kubernetes would refuse the pod). ``claims`` (dynamic resource claims of
    the pod) only where a LoadTest's template may name its own pod's claims, never in defaults."""
    if not isinstance(resources, dict):
        return 'use a JSON object such as {"requests": {"cpu": "500m", "memory": "256Mi"}}'
    for key, amounts in resources.items():
        if key == "claims" and claims:
            continue
        if key not in ("requests", "limits"):
            return f"{key!r} is not a resources field; use requests and limits"
        if not isinstance(amounts, dict):
            return f"{key} must be an object of resource name to quantity"
        for name, amount in amounts.items():
            if not isinstance(name, str) or not _RESOURCE_NAME.fullmatch(name):
                return f"{key}: {name!r} is not a resource name; use {NAMES}"
            if quantity(amount) is None:
                return f"{key}.{name}: {amount!r} is not {EXAMPLES}"
    requests, limits = resources.get("requests", {}), resources.get("limits", {})
    for name in sorted(set(requests) & set(limits)):
        if quantity(requests[name]) > quantity(limits[name]):  # type: ignore[operator]
            return (
                f"requests.{name} {requests[name]} is more than limits.{name} {limits[name]} "
                "(Kubernetes refuses such a pod)"
            )
    return None


def parse_resources(variable: str, text: str) -> Resources:
    """A resources variable's JSON, checked; quantities become strings, as kubectl shows them."""
    try:
        resources = json.loads(text)
    except json.JSONDecodeError as error:
        raise DefaultsError(variable, text, f"use JSON ({error.msg})") from None
    problem = resources_problem(resources)
    if problem:
        raise DefaultsError(variable, text, problem)
    return {
        key: {name: _text(amount) for name, amount in amounts.items()}
        for key, amounts in resources.items()
        if amounts
    }


def _text(amount: object) -> str:
    if isinstance(amount, float) and amount.is_integer():
        return str(int(amount))
    return str(amount)


def parse_policy(variable: str, text: str) -> str:
    if text not in CLEANUP_POLICIES:
        raise DefaultsError(variable, text, "use one of " + ", ".join(CLEANUP_POLICIES))
    return text


def parse_ttl(variable: str, text: str) -> int:
    if not re.fullmatch(r"[0-9]+", text.strip()):
        raise DefaultsError(variable, text, "use a whole number of seconds ≥ 0")
    return int(text)


def from_env(env: Mapping[str, str]) -> Defaults:
    """The defaults the environment sets; raises DefaultsError at the first bad variable."""

    def given(variable: str) -> str | None:
        text = env.get(variable, "")
        return text if text.strip() else None

    manager, worker = given(MANAGER_RESOURCES), given(WORKER_RESOURCES)
    policy, ttl, pull = given(CLEANUP_POLICY), given(TTL_SECONDS), given(PULL_SECRETS)
    return Defaults(
        manager_resources=parse_resources(MANAGER_RESOURCES, manager) if manager else {},
        worker_resources=parse_resources(WORKER_RESOURCES, worker) if worker else {},
        cleanup_policy=parse_policy(CLEANUP_POLICY, policy) if policy else "Never",
        cleanup_ttl=parse_ttl(TTL_SECONDS, ttl) if ttl else 0,
        image_pull_secrets=parse_secret_names(PULL_SECRETS, pull) if pull else (),
    )


def parse_secret_names(variable: str, text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(","))
    for name in names:
        if not _SECRET_NAME.fullmatch(name):
            allowed = "use Secret names (lowercase letters, digits, '-', '.'), comma-separated"
            raise DefaultsError(variable, text, allowed)
    return names
