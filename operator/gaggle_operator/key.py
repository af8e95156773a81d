"""The operator's own key, kept in a Secret beside its Lease: every operator of one install (a
restarted pod, the standby of two replicas) derives the same LoadTest tokens from it (relay.py:
the operator may not read the token Secrets it creates, so it derives them again to call a
manager). The first operator to find none creates it; a 409 means another just did: read it.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gaggle_operator.kube import api

FIELD = "key"


def _core() -> Any:  # Any: we hand it plain manifests, not the client's models
    return client.CoreV1Api(api())


def _read(namespace: str, name: str) -> bytes | None:
    try:
        found = _core().read_namespaced_secret(name, namespace)
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    encoded = (found.data or {}).get(FIELD)
    return base64.b64decode(encoded) if encoded else None


def operator_key(namespace: str, name: str) -> bytes:
    """The key in Secret ``name`` of ``namespace``, made first if there is none."""
    key = _read(namespace, name)
    if key is not None:
        return key
    made = secrets.token_bytes(32)
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {"app.kubernetes.io/name": "gaggle"}},
        "data": {FIELD: base64.b64encode(made).decode()},
    }  # fmt: skip
    try:
        _core().create_namespaced_secret(namespace, body)
    except ApiException as error:
        if error.status != 409:
            raise
        key = _read(namespace, name)
        if key is None:
            raise
        return key
    return made
