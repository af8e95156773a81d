"""Leader election on a coordination.k8s.io Lease: one operator acts, the others wait.

Why: a Deployment's ReplicaSet starts a replacement as soon as a pod is evicted or its node is
unreachable, while the old pod may still run; two operators would then both act on every
LoadTest (doubled Events and status writes, two cleanups). kopf's peering pauses *every*
operator of the same priority, so two replicas would freeze; a Lease is what Kubernetes' own
controllers use (kube-controller-manager, kube-scheduler) and lets a second replica stand by.

The rules are client-go's leaderelection: a Lease is free when its holder is empty or when its
record has not changed for ``leaseDurationSeconds`` *as this process observed it* (our clock
only, so the nodes' clock skew does not matter); every write carries the resourceVersion read,
so two candidates cannot both win. The leader renews every ``retry`` seconds and gives up
(stops acting) when it could not renew within ``renew_deadline``; on a clean exit it empties the
holder so a standby takes over at once.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gaggle_operator.kube import api, words

Manifest = dict[str, Any]


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Timing:
    """client-go's defaults: a lost leader is replaced within ``duration`` seconds."""

    duration: float = 15.0
    renew_deadline: float = 10.0
    retry: float = 2.0


@dataclass
class Election:
    """This process's candidacy for the Lease ``name`` in ``namespace``."""

    namespace: str
    name: str
    identity: str
    timing: Timing = field(default_factory=Timing)
    _seen: tuple[Any, ...] = ()  # the last record observed, and when (monotonic)
    _seen_at: float = 0.0
    renewed_at: float = 0.0  # monotonic time of our last successful renewal

    def _api(self) -> Any:  # Any: we hand it plain manifests, not the client's models
        return client.CoordinationV1Api(api())

    def _read(self) -> Manifest | None:
        try:
            answer: Any = self._api().read_namespaced_lease(
                self.name, self.namespace, _preload_content=False
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        lease: Manifest = json.loads(answer.data)
        return lease

    def _observe(self, lease: Manifest) -> None:
        spec = lease.get("spec") or {}
        record = (spec.get("holderIdentity"), spec.get("renewTime"), spec.get("leaseTransitions"))
        if record != self._seen:
            self._seen, self._seen_at = record, time.monotonic()

    def holder(self) -> str:
        lease = self._read()
        return str(((lease or {}).get("spec") or {}).get("holderIdentity") or "")

    def try_acquire_or_renew(self) -> bool:
        """One attempt: True when this process holds the Lease now. API errors other than a lost
        race (409) or a missing Lease propagate: the caller decides how long to keep trying."""
        now = _stamp()
        duration = max(1, round(self.timing.duration))
        lease = self._read()
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {
                    "holderIdentity": self.identity,
                    "leaseDurationSeconds": duration,
                    "acquireTime": now,
                    "renewTime": now,
                    "leaseTransitions": 0,
                },
            }
            try:
                self._api().create_namespaced_lease(self.namespace, body)
            except ApiException as error:
                if error.status == 409:  # another candidate created it first
                    return False
                raise
            self.renewed_at = time.monotonic()
            return True
        self._observe(lease)
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        mine = holder == self.identity
        expired = time.monotonic() - self._seen_at >= float(
            spec.get("leaseDurationSeconds") or duration
        )
        if holder and not mine and not expired:
            return False
        transitions = int(spec.get("leaseTransitions") or 0)
        spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": duration,
            "acquireTime": spec.get("acquireTime") if mine else now,
            "renewTime": now,
            "leaseTransitions": transitions if mine else transitions + 1,
        }
        lease["spec"] = spec
        try:
            self._api().replace_namespaced_lease(self.name, self.namespace, lease)
        except ApiException as error:
            if error.status == 409:  # changed since we read it: someone else won this round
                return False
            raise
        self.renewed_at = time.monotonic()
        return True

    def release(self) -> None:
        """Empty the holder (if still ours), so a standby need not wait out the duration."""
        try:
            lease = self._read()
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            lease["spec"].update(holderIdentity=None, leaseDurationSeconds=1, renewTime=_stamp())
            self._api().replace_namespaced_lease(self.name, self.namespace, lease)
        except ApiException as error:  # best effort: the Lease expires on its own
            print(f"gaggle operator: could not release Lease {self.name}: {words(error)}")
