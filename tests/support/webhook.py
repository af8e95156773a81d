"""A mutating admission webhook of our own that injects a sidecar into pods, as a service mesh's
does (Istio's, Linkerd's): the mechanism, on the real API server, without a mesh.

The webhook serves HTTPS on 127.0.0.1 (the API server runs on this host) with a certificate of
the cluster's CA, and answers AdmissionReview v1 with a JSON patch that appends a container
named ``istio-proxy`` which runs until it is killed. ``honour_opt_out`` makes it skip pods
annotated ``sidecar.istio.io/inject: "false"``, as Istio does; without it, it injects into every
pod of the namespace that carries a ``gaggle.dev/loadtest`` label.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import yaml
from aiohttp import web

from tests.cluster.cluster import Cluster
from tests.conftest import free_port


def sidecar(cluster: Cluster) -> dict[str, Any]:
    """A proxy that runs until it is killed: the node's small busybox image stands in for
    Istio's (no registry answers here)."""
    assert cluster.real is not None
    assert cluster.real.toolbox is not None
    return {"name": "istio-proxy", "image": cluster.real.toolbox.name,
            "imagePullPolicy": "IfNotPresent", "command": ["sleep", "600"]}  # fmt: skip


def _patch(
    pod: dict[str, Any], honour_opt_out: bool, container: dict[str, Any]
) -> list[dict[str, Any]]:
    annotations = pod.get("metadata", {}).get("annotations") or {}
    if honour_opt_out and annotations.get("sidecar.istio.io/inject") == "false":
        return []
    return [{"op": "add", "path": "/spec/containers/-", "value": container}]


@contextmanager
def sidecar_injector(cluster: Cluster, namespace: str, honour_opt_out: bool) -> Iterator[list[str]]:
    """The webhook and its MutatingWebhookConfiguration, for ``namespace``'s gaggle pods, until
    the block ends; yields the names of the pods it injected into."""
    assert cluster.control is not None
    assert cluster.control.pki is not None
    pki = cluster.control.pki
    pair = pki.issue(f"webhook-{namespace}", "webhook", server_ips=("127.0.0.1",))
    injected: list[str] = []
    container = sidecar(cluster)

    async def review(request: web.Request) -> web.Response:
        body = await request.json()
        pod = body["request"]["object"]
        patch = _patch(pod, honour_opt_out, container)
        answer: dict[str, Any] = {"uid": body["request"]["uid"], "allowed": True}
        if patch:
            injected.append(pod["metadata"].get("name", ""))
            answer["patchType"] = "JSONPatch"
            answer["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
        return web.json_response({**body, "response": answer})

    loop = asyncio.new_event_loop()
    started = threading.Event()
    port = free_port()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        app = web.Application()
        app.router.add_post("/mutate", review)
        runner = web.AppRunner(app)
        loop.run_until_complete(runner.setup())
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(pair.cert), str(pair.key))
        site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=context)
        loop.run_until_complete(site.start())
        started.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(10), "the webhook did not start"
    name = f"sidecars-{namespace}"
    config = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": "sidecars.gaggle.test",
                "clientConfig": {
                    "url": f"https://127.0.0.1:{port}/mutate",
                    "caBundle": base64.b64encode(pki.ca.read_bytes()).decode(),
                },
                "rules": [
                    {
                        "operations": ["CREATE"],
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "resources": ["pods"],
                    }
                ],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                "objectSelector": {
                    "matchExpressions": [{"key": "gaggle.dev/loadtest", "operator": "Exists"}]
                },
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "failurePolicy": "Fail",
                "timeoutSeconds": 5,
            }
        ],
    }
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(config))
    try:
        yield injected
    finally:
        cluster.kubectl("delete", "mutatingwebhookconfiguration", name, "--ignore-not-found")
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
