"""What a LoadTest's pod templates may set: an allow-list, so that who may create LoadTests
cannot make privileged pods, mount the node, join its network or borrow a ServiceAccount's
token through the operator (which creates the pods with its own rights).

Allowed: where the pods run (nodeSelector, tolerations, affinity, topology spread, priority
class), pulling the image (imagePullSecrets), labels and annotations, and for the ``gaggle``
container its resources, environment, command, arguments and pull policy. Refused, by field
name: everything else — host namespaces, volumes, service accounts, security contexts, other
containers. A LoadTest runs its test's code anyway; what it must not get is more privilege than
the operator's locked-down pod gives that code (deploy/README.md, "Threat model").
"""

from __future__ import annotations

from typing import Any

CONTAINER = "gaggle"
METADATA = ("labels", "annotations")
POD = (
    "affinity",
    "containers",
    "imagePullSecrets",
    "nodeSelector",
    "priorityClassName",
    "tolerations",
    "topologySpreadConstraints",
)
GAGGLE_CONTAINER = ("args", "command", "env", "envFrom", "imagePullPolicy", "name", "resources")


class Refused(ValueError):
    """``field`` (its path in the spec) is not one a template may set."""

    def __init__(self, field: str, value: object, allowed: tuple[str, ...]) -> None:
        self.field, self.value, self.allowed = field, value, allowed
        super().__init__(field)

    @property
    def why(self) -> str:
        return "a LoadTest's pod template may set only " + ", ".join(self.allowed)


def check(template: dict[str, Any], path: str) -> None:
    """Raise Refused for the first field of ``template`` outside the allow-list."""
    _only(template, path, ("metadata", "spec"))
    metadata = template.get("metadata") or {}
    if isinstance(metadata, dict):
        _only(metadata, f"{path}.metadata", METADATA)
    spec = template.get("spec") or {}
    if not isinstance(spec, dict):
        return
    _only(spec, f"{path}.spec", POD)
    for container in spec.get("containers") or []:
        if not isinstance(container, dict):
            continue
        name = container.get("name")
        where = f"{path}.spec.containers[{name}]"
        if name != CONTAINER:
            raise Refused(where, container, (f"the {CONTAINER} container (no other containers)",))
        _only(container, where, GAGGLE_CONTAINER)


def _only(part: dict[str, Any], path: str, allowed: tuple[str, ...]) -> None:
    for key in part:
        if key not in allowed:
            raise Refused(f"{path}.{key}", part[key], allowed)
