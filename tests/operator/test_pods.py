"""What a LoadTest's pods say, read from pod objects as the kubelet writes them: the reasons and
the kubelet's own words reach the LoadTest's conditions and failure message."""

from __future__ import annotations

from typing import Any

from gaggle_operator.pods import describe, failed_pods, trouble


def pod(name: str, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"gaggle.dev/role": "worker"}}, "status": status}


PULL = 'failed to pull and unpack image "localhost/nope:1": not found'


def waiting(reason: str, message: str) -> dict[str, Any]:
    return {"name": "gaggle", "state": {"waiting": {"reason": reason, "message": message}}}


def test_an_image_that_cannot_be_pulled_is_described_in_the_kubelets_words() -> None:
    stuck = pod("web-worker-0", phase="Pending", containerStatuses=[waiting("ErrImagePull", PULL)])
    assert trouble(stuck) == {"name": "web-worker-0", "reason": "ErrImagePull", "message": PULL}
    assert describe(failed_pods([stuck])) == f"web-worker-0: ErrImagePull ({PULL})"


def test_an_oom_killed_worker_is_named_with_its_exit_code() -> None:
    killed = {"name": "gaggle", "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}
    dead = pod("web-worker-1", phase="Failed", containerStatuses=[killed])
    assert trouble(dead) == {"name": "web-worker-1", "reason": "OOMKilled", "exitCode": 137}
    assert describe(failed_pods([dead])) == "web-worker-1: OOMKilled"


def test_healthy_pods_say_nothing() -> None:
    running = {"name": "gaggle", "state": {"running": {}}}
    assert failed_pods([pod("web-worker-0", phase="Running", containerStatuses=[running])]) == []
    assert describe([]) == "no pod reported a reason"
