"""Discovery: /version, /api, /apis and each group-version's APIResourceList.

Only the legacy (unaggregated) discovery documents are served: clients that ask for aggregated
discovery (``as=APIGroupDiscoveryList``) get plain JSON and fall back to the legacy walk, as
kubectl 1.32, kopf and the Python client all do.
"""

from __future__ import annotations

from typing import Any

from tests.cluster.resources import Registry

VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-gaggle",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.23",
    "compiler": "gc",
    "platform": "linux/amd64",
}

PREFERRED = {"coordination.k8s.io": "v1", "events.k8s.io": "v1"}


def core_versions() -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
    }


def group(name: str, versions: list[str]) -> dict[str, Any]:
    listed = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    preferred = next((x for x in listed if x["version"] == PREFERRED.get(name)), listed[0])
    return {"name": name, "versions": listed, "preferredVersion": preferred}


def groups(registry: Registry) -> dict[str, Any]:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [group(name, vs) for name, vs in sorted(registry.group_versions().items())],
    }


def resource_list(registry: Registry, group_name: str, version: str) -> dict[str, Any] | None:
    found = registry.in_group_version(group_name, version)
    if not found:
        return None
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group_name}/{version}" if group_name else version,
        "resources": [entry for res in found for entry in res.discovery()],
    }
