"""Contract test of in-cluster API access: the API is served over HTTPS from the cluster's CA and
records which ServiceAccount made each request."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request

import pytest

from tests.cluster import serviceaccount
from tests.cluster.server import Cluster

pytestmark = pytest.mark.timeout(60)


def test_https_checks_the_token_and_the_host_uses_plain_http(cluster: Cluster) -> None:
    api = cluster.incluster
    assert api is not None
    context = ssl.create_default_context(cafile=str(api.ca))

    def get(token: str) -> int:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        request = urllib.request.Request(f"{api.url}/version", headers=headers)
        try:
            with urllib.request.urlopen(request, context=context, timeout=5) as reply:
                return int(reply.status)
        except urllib.error.HTTPError as error:
            return error.code

    assert get(serviceaccount.token("ns-x", "probe")) == 200
    assert get("") == 200  # anonymous, as the host's kubeconfig is: no RBAC here
    assert get("forged") == 401
    assert cluster.requests_by("ns-x", "probe") == [("GET", "/version")]
