"""The kinds the local cluster serves: built-in resources and the ones CRDs register.

Built-in kinds are stored and served like any other; only Pods (the kubelet), Namespaces,
CustomResourceDefinitions (their controllers) and ownerReferences (the garbage collector) have
behaviour behind them. Deployments, StatefulSets, Jobs, RBAC and the rest are accepted and stored,
but no controller acts on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    short_names: list[str] = field(default_factory=list)
    subresources: tuple[str, ...] = ()
    categories: list[str] = field(default_factory=list)
    # for custom resources: the CRD's printer columns and schema, and the versions it serves
    custom: bool = False
    columns: list[dict[str, Any]] = field(default_factory=list)
    schema: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        """The storage key: one per group and plural, whatever version a client asks for."""
        return f"{self.group}/{self.plural}"

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    def discovery(self) -> list[dict[str, Any]]:
        """This resource's entries in its group-version's APIResourceList."""
        entry: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": ALL_VERBS,
        }
        if self.short_names:
            entry["shortNames"] = self.short_names
        if self.categories:
            entry["categories"] = self.categories
        entries = [entry]
        for sub in self.subresources:
            verbs = ["get"] if sub == "log" else ["get", "patch", "update"]
            entries.append(
                {
                    "name": f"{self.plural}/{sub}",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": self.kind,
                    "verbs": verbs,
                }
            )
        return entries


def _r(group: str, version: str, plural: str, kind: str, **kw: Any) -> Resource:
    return Resource(group, version, plural, kind, **kw)


BUILTINS = [
    _r("", "v1", "namespaces", "Namespace", namespaced=False, short_names=["ns"],
       subresources=("status",)),
    _r("", "v1", "pods", "Pod", short_names=["po"], subresources=("status", "log"),
       categories=["all"]),
    _r("", "v1", "services", "Service", short_names=["svc"], subresources=("status",),
       categories=["all"]),
    _r("", "v1", "endpoints", "Endpoints", short_names=["ep"]),
    _r("", "v1", "configmaps", "ConfigMap", short_names=["cm"]),
    _r("", "v1", "secrets", "Secret"),
    _r("", "v1", "serviceaccounts", "ServiceAccount", short_names=["sa"]),
    _r("", "v1", "events", "Event", short_names=["ev"]),
    _r("", "v1", "nodes", "Node", namespaced=False, short_names=["no"], subresources=("status",)),
    _r("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", short_names=["pvc"],
       subresources=("status",)),
    _r("apps", "v1", "deployments", "Deployment", short_names=["deploy"],
       subresources=("status",), categories=["all"]),
    _r("apps", "v1", "statefulsets", "StatefulSet", short_names=["sts"],
       subresources=("status",), categories=["all"]),
    _r("apps", "v1", "replicasets", "ReplicaSet", short_names=["rs"], subresources=("status",)),
    _r("apps", "v1", "daemonsets", "DaemonSet", short_names=["ds"], subresources=("status",)),
    _r("batch", "v1", "jobs", "Job", subresources=("status",), categories=["all"]),
    _r("batch", "v1", "cronjobs", "CronJob", short_names=["cj"], subresources=("status",)),
    _r("coordination.k8s.io", "v1", "leases", "Lease"),
    _r("events.k8s.io", "v1", "events", "Event", short_names=["ev"]),
    _r("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", short_names=["pdb"],
       subresources=("status",)),
    _r("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    _r("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    _r("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False),
    _r("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding",
       namespaced=False),
    _r("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition",
       namespaced=False, short_names=["crd", "crds"], subresources=("status",)),
]  # fmt: skip


def from_crd(crd: dict[str, Any]) -> list[Resource]:
    """One Resource per served version of a CustomResourceDefinition (apiextensions/v1)."""
    spec = crd["spec"]
    names = spec["names"]
    found = []
    for version in spec.get("versions", []):
        if not version.get("served", True):
            continue
        subs = version.get("subresources") or {}
        found.append(
            Resource(
                group=spec["group"],
                version=version["name"],
                plural=names["plural"],
                kind=names["kind"],
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=list(names.get("shortNames", [])),
                subresources=tuple(s for s in ("status", "scale") if s in subs),
                categories=list(names.get("categories", [])),
                custom=True,
                columns=list(version.get("additionalPrinterColumns", [])),
                schema=(version.get("schema") or {}).get("openAPIV3Schema"),
            )
        )
    return found


class Registry:
    """Every resource served now, looked up by group/version/plural (as URLs name them)."""

    def __init__(self) -> None:
        self.resources: dict[tuple[str, str, str], Resource] = {}
        for resource in BUILTINS:
            self.add(resource)

    def add(self, resource: Resource) -> None:
        self.resources[(resource.group, resource.version, resource.plural)] = resource

    def remove_group_plural(self, group: str, plural: str) -> None:
        for key in [k for k in self.resources if (k[0], k[2]) == (group, plural)]:
            del self.resources[key]

    def find(self, group: str, version: str, plural: str) -> Resource | None:
        return self.resources.get((group, version, plural))

    def by_key(self, key: str) -> Resource | None:
        """The resource stored under ``key`` (any served version)."""
        return next((r for r in self.resources.values() if r.key == key), None)

    def by_kind(self, api_version: str, kind: str) -> Resource | None:
        group, _, version = api_version.rpartition("/")
        return next(
            (
                r
                for r in self.resources.values()
                if (r.group, r.version, r.kind) == (group, version, kind)
            ),
            None,
        )

    def group_versions(self) -> dict[str, list[str]]:
        """{group: [versions]} for every named group (the core group is not listed)."""
        groups: dict[str, list[str]] = {}
        for group, version, _ in self.resources:
            if group and version not in groups.setdefault(group, []):
                groups[group].append(version)
        return groups

    def in_group_version(self, group: str, version: str) -> list[Resource]:
        return [r for (g, v, _), r in self.resources.items() if (g, v) == (group, version)]
