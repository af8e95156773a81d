"""In-cluster API access: what a kubelet gives a pod to reach the API, and who called it.

A pod reaches the API as in a real cluster, so ``kubernetes.config.load_incluster_config()`` (and
kopf's service-account login) work unchanged inside it:

- Environment, for every pod (a kubelet always gives the ``kubernetes`` Service's variables):
  ``KUBERNETES_SERVICE_HOST``, ``KUBERNETES_SERVICE_PORT``, ``KUBERNETES_SERVICE_PORT_HTTPS``
  and the ``KUBERNETES_PORT*`` links, naming the API's HTTPS address (``Endpoint``): the bridge
  address (``kubelet.host_ip``, port 443 unless taken) in netns mode, 127.0.0.1 otherwise.
- ``/var/run/secrets/kubernetes.io/serviceaccount/`` with ``token``, ``ca.crt`` (the cluster CA,
  see ``pki``) and ``namespace``, bound read-only like any volume (netns mode only: bind mounts
  need the pod's own mount namespace), unless ``automountServiceAccountToken: false`` on the pod
  or, when the pod does not say, on its ServiceAccount. A container that mounts something at that
  path itself keeps its own. Unlike a real cluster's, the volume is not added to the stored Pod.
- The pod's hosts file resolves ``kubernetes``, ``kubernetes.default``, ``kubernetes.default.svc``
  and ``kubernetes.default.svc.cluster.local`` to that address (netns mode: no hosts file else).

Tokens are ``emulated:<namespace>:<serviceaccount>`` (``spec.serviceAccountName``, "default"
when unset), unsigned and never expiring: anything that reaches the API may claim any account.
The API reads the bearer token of every request (401 for one it cannot read; none at all, as
from the host's kubeconfig, is ``system:anonymous``) and ``Audit`` keeps the last requests with
their identity. There is no authorization (RBAC is stored, never enforced): every identity may
do everything, so tests check least privilege on the record (``Cluster.requests_by``) instead.
Not emulated: the ``default`` ServiceAccount and ``kube-root-ca.crt`` ConfigMap of each
namespace, the ``kubernetes`` Service object, token expiry and audiences.
"""

from __future__ import annotations

import collections
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from aiohttp import web

from tests.cluster.store import ApiError, Obj, Store

MOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
NAMES = "kubernetes kubernetes.default kubernetes.default.svc kubernetes.default.svc.cluster.local"
PREFIX = "emulated"
ANONYMOUS = "system:anonymous"


@dataclass(frozen=True)
class Endpoint:
    """Where pods reach the API over HTTPS, and the CA that signed its certificate."""

    host: str
    port: int
    ca: Path

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        tcp = f"KUBERNETES_PORT_{self.port}_TCP"
        return {
            "KUBERNETES_SERVICE_HOST": self.host,
            "KUBERNETES_SERVICE_PORT": str(self.port),
            "KUBERNETES_SERVICE_PORT_HTTPS": str(self.port),
            "KUBERNETES_PORT": f"tcp://{self.host}:{self.port}",
            tcp: f"tcp://{self.host}:{self.port}",
            f"{tcp}_PROTO": "tcp",
            f"{tcp}_PORT": str(self.port),
            f"{tcp}_ADDR": self.host,
        }

    def hosts_line(self) -> str:
        return f"{self.host}\t{NAMES}\n"


# -- identities ----------------------------------------------------------------------------------


def token(namespace: str, serviceaccount: str) -> str:
    return f"{PREFIX}:{namespace}:{serviceaccount}"


def user(namespace: str, serviceaccount: str) -> str:
    """The user name Kubernetes gives a ServiceAccount (what audit logs and RBAC subjects say)."""
    return f"system:serviceaccount:{namespace}:{serviceaccount}"


def user_of(authorization: str | None) -> str:
    """The identity an ``Authorization`` header claims; ApiError 401 when it cannot be read."""
    if not authorization:
        return ANONYMOUS
    scheme, _, credential = authorization.strip().partition(" ")
    parts = credential.strip().split(":")
    if scheme.lower() != "bearer" or len(parts) != 3 or parts[0] != PREFIX or not all(parts):
        raise ApiError(401, "Unauthorized", "Unauthorized")
    return user(parts[1], parts[2])


class Seen(NamedTuple):
    method: str
    path: str  # without the query string
    user: str  # system:serviceaccount:<namespace>:<name>, or system:anonymous


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Audit:
    """The last ``keep`` requests with who made them (kept on the cluster's loop)."""

    def __init__(self, keep: int = 20000) -> None:
        self.seen: collections.deque[Seen] = collections.deque(maxlen=keep)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            who = user_of(request.headers.get("Authorization"))
        except ApiError as error:
            return web.json_response(error.status(), status=error.code)
        self.seen.append(Seen(request.method, request.path, who))
        return await handler(request)

    def by(self, namespace: str, serviceaccount: str) -> list[tuple[str, str]]:
        """(method, path) of the kept requests made as this ServiceAccount, oldest first."""
        wanted = user(namespace, serviceaccount)
        return [(s.method, s.path) for s in self.seen if s.user == wanted]


# -- what the kubelet gives a pod ----------------------------------------------------------------


def automount(store: Store, pod: Obj) -> bool:
    """The pod's own ``automountServiceAccountToken``, else its ServiceAccount's, else true."""
    spec = pod["spec"]
    if spec.get("automountServiceAccountToken") is not None:
        return bool(spec["automountServiceAccountToken"])
    res = store.registry.find("", "v1", "serviceaccounts")
    assert res is not None
    try:
        account = store.get(res, pod["metadata"]["namespace"], account_of(pod))
    except ApiError:
        return True
    return account.get("automountServiceAccountToken") is not False


def account_of(pod: Obj) -> str:
    spec = pod["spec"]
    return str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")


def materialise(store: Store, pod: Obj, folder: Path, endpoint: Endpoint) -> Path | None:
    """Write the pod's token, CA and namespace under ``folder``; None when it gets none."""
    if not automount(store, pod):
        return None
    namespace = pod["metadata"]["namespace"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "token").write_text(token(namespace, account_of(pod)))
    (folder / "namespace").write_text(namespace)
    shutil.copyfile(endpoint.ca, folder / "ca.crt")
    for file in folder.iterdir():
        file.chmod(0o644)
    return folder


def with_mount(container: Obj, volume: str) -> Obj:
    """The container with the token volume mounted read-only (unless it mounts that path)."""
    mounts = container.get("volumeMounts") or []
    if any(Path(m.get("mountPath", "")) == MOUNT for m in mounts):
        return container
    own = {"name": volume, "mountPath": str(MOUNT), "readOnly": True}
    return {**container, "volumeMounts": [*mounts, own]}
