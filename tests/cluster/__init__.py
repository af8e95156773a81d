"""A local Kubernetes for the tests: an API-server emulator and a kubelet that runs pods.

No kube-apiserver can be had on these machines, so this package is the most faithful stand-in we
could build for real clients: kubectl 1.32, kopf 1.45 and the kubernetes Python client (sync and
asyncio) talk to it as to a cluster. What each part emulates, and what it does not, is said in
its module's docstring:

- ``server``: ``Cluster``, the whole thing on an event loop in a thread; writes a kubeconfig.
- ``serviceaccount``, ``pki``: in-cluster access (HTTPS from a cluster CA, tokens, env, mounts)
  and the record of which ServiceAccount made each request (no RBAC is enforced).
- ``api``, ``watch``, ``discovery``, ``openapi``, ``table``: the REST surface.
- ``store``, ``selectors``, ``patch``: objects, resourceVersions, watches, selectors, patches.
- ``resources``, ``controllers``: kinds, CRDs, namespaces and the garbage collector.
- ``kubelet``, ``pod``, ``network``, ``volumes``: pods run as local processes in their own
  network and mount namespaces, Services resolved through per-pod hosts files.
- ``fixtures``: the pytest fixtures (``cluster``, ``kubectl``, ``namespace``).

By hand: ``python -m tests.cluster --kubeconfig /tmp/kc`` (until Ctrl-C).
"""

from tests.cluster.server import Cluster

__all__ = ["Cluster"]
