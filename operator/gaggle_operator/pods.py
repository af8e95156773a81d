"""What a LoadTest's pods say: how many workers are ready, which pods are unwell and why, and how
the manager ended. Pure functions over pod objects, so every reason can be tested without a
cluster. The reasons are Kubernetes' own (Unschedulable, ImagePullBackOff, OOMKilled, ...):
k6-operator's runs hung forever on exactly these (k6-operator#251, #290)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CONTAINER = "gaggle"  # the container whose end is the pod's (children.CONTAINER)
MAX_FAILED_PODS = 10
WAITING_TROUBLE = {
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
}


@dataclass(frozen=True, slots=True)
class Ending:
    """How a pod's container ended: exit code and Kubernetes' reason."""

    exit_code: int
    reason: str


def role(pod: dict[str, Any]) -> str:
    return str(pod.get("metadata", {}).get("labels", {}).get("gaggle.dev/role", ""))


def ending(pod: dict[str, Any]) -> Ending | None:
    """How the pod's ``gaggle`` container ended, whatever else runs beside it: a mesh's sidecar
    keeps the pod Running after the run, and one sorted before ``gaggle`` must not lend it its
    exit code. None while it runs."""
    status = pod.get("status", {})
    ours = [c for c in status.get("containerStatuses", []) if c.get("name") == CONTAINER]
    terminated = ours[0].get("state", {}).get("terminated") if ours else None
    if terminated:
        return Ending(int(terminated.get("exitCode", 0)), str(terminated.get("reason", "")))
    phase = status.get("phase")
    if phase not in ("Succeeded", "Failed"):
        return None
    # ended without our container's state (e.g. evicted before it started)
    return Ending(0 if phase == "Succeeded" else 1, str(status.get("reason", phase)))


def is_ready(pod: dict[str, Any]) -> bool:
    status = pod.get("status", {})
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions", [])}
    return status.get("phase") == "Running" and conditions.get("Ready") == "True"


def trouble(pod: dict[str, Any]) -> dict[str, Any] | None:
    """{name, reason, exitCode?} for a pod that failed or cannot start; None when it is fine."""
    name = pod.get("metadata", {}).get("name", "")
    status = pod.get("status", {})
    end = ending(pod)
    if end is not None and (status.get("phase") == "Failed" or end.exit_code != 0):
        return {"name": name, "reason": end.reason or "Error", "exitCode": end.exit_code}
    for condition in status.get("conditions", []):
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return {
                "name": name,
                "reason": condition.get("reason") or "Unschedulable",
                "message": str(condition.get("message", ""))[:200],
            }
    for container in status.get("containerStatuses", []):
        waiting = container.get("state", {}).get("waiting") or {}
        if waiting.get("reason") in WAITING_TROUBLE:
            return {
                "name": name,
                "reason": waiting["reason"],
                "message": str(waiting.get("message", ""))[:200],
            }
    return None


def failed_pods(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = [t for t in (trouble(pod) for pod in pods) if t is not None]
    return sorted(found, key=lambda t: t["name"])[:MAX_FAILED_PODS]


def describe(failed: list[dict[str, Any]]) -> str:
    """``web-worker-1: ErrImagePull (failed to pull …); web-worker-2: OOMKilled`` for a condition
    message: the reason, and the kubelet's or the scheduler's own words when it gave some."""
    parts = [
        f"{t['name']}: {t['reason']}" + (f" ({t['message']})" if t.get("message") else "")
        for t in failed
    ]
    return "; ".join(parts) or "no pod reported a reason"
