"""The manifests a LoadTest runs on, built from its checked spec: the gaggle's shape, the user's
template laid over ours, and the security settings kept unless the user says otherwise."""

from __future__ import annotations

from gaggle.options.argv import parse_run_args
from gaggle_operator.children import (
    manager_pod,
    manager_rbac,
    manager_service,
    overlay,
    script_config_map,
    worker_pod,
)
from gaggle_operator.spec import parse_spec
from tests.operator.test_spec import spec


def test_the_manager_runs_the_gaggle_the_spec_describes() -> None:
    parsed = parse_spec(spec(workers={"replicas": 3}))
    pod = manager_pod("web", "team-a", parsed, run="1", uid="0123456789ab")
    (container,) = pod["spec"]["containers"]
    assert container["command"] == ["gaggle-operator"]
    args = container["args"]
    assert args[:9] == ["manage", "--loadtest", "web", "--namespace", "team-a", "--run", "1",
                        "--", "run"]  # fmt: skip
    gaggle = args[args.index("--") + 2 :]
    assert gaggle[0] == "/gaggle/script/loadtest.py"
    values, _ = parse_run_args(gaggle[1:], gaggle_flags=True)
    assert (values["manager"], values["expect_workers"], values["users"]) == (True, "3", "10")
    assert pod["spec"]["serviceAccountName"] == "web-manager"
    assert {"name": "script", "mountPath": "/gaggle/script", "readOnly": True} in container[
        "volumeMounts"]  # fmt: skip
    assert script_config_map("web", parsed)["data"]["loadtest.py"] == parsed.script.inline  # type: ignore[index]


def test_workers_join_the_managers_service_with_the_token() -> None:
    parsed = parse_spec(spec(workers={"replicas": 2}, spread=True))
    pod = worker_pod("web", "team-a", parsed, run="1", index=1, uid="0123456789ab")
    (container,) = pod["spec"]["containers"]
    assert pod["metadata"]["name"] == "web-worker-1"
    assert container["args"][container["args"].index("--manager-host") + 1] == (
        "web-manager.team-a.svc")  # fmt: skip
    token = next(e for e in container["env"] if e["name"] == "GAGGLE_TOKEN")
    assert token["valueFrom"]["secretKeyRef"] == {"name": "web-token-01234567", "key": "token"}
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert "podAntiAffinity" in pod["spec"]["affinity"]
    service = manager_service("web", run="1")
    assert "clusterIP" not in service["spec"]  # a ClusterIP: its name resolves before the pod
    assert service["spec"]["selector"] == {
        "gaggle.dev/loadtest": "web",
        "gaggle.dev/role": "manager",
    }


def test_pods_are_locked_down_unless_the_template_says_otherwise() -> None:
    ours = {"name": "gaggle", "resources": {"limits": {"cpu": "2"}}}
    template = {
        "metadata": {"labels": {"team": "a"}},
        "spec": {"nodeSelector": {"pool": "load"}, "containers": [ours]},
    }
    pod = worker_pod("web", "ns", parse_spec(spec(workers={"template": template})), "1", 0, "u")
    [gaggle] = pod["spec"]["containers"]
    assert gaggle["resources"] == {"limits": {"cpu": "2"}}
    assert gaggle["securityContext"]["readOnlyRootFilesystem"] is True  # kept under the overlay
    assert gaggle["image"] == "ghcr.io/example/gaggle:1"
    assert pod["metadata"]["labels"]["team"] == "a"
    assert pod["metadata"]["labels"]["gaggle.dev/role"] == "worker"
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["nodeSelector"] == {"pool": "load"}


def test_overlay_leaves_its_inputs_alone() -> None:
    base = {"a": {"b": [1]}, "c": [{"name": "x", "v": 1}]}
    extra = {"a": {"d": 2}, "c": [{"name": "x", "v": 2}]}
    assert overlay(base, extra) == {"a": {"b": [1], "d": 2}, "c": [{"name": "x", "v": 2}]}
    assert base == {"a": {"b": [1]}, "c": [{"name": "x", "v": 1}]}


def test_the_manager_may_patch_only_its_own_loadtests_status() -> None:
    account, role, binding = manager_rbac("web")
    rules = role["rules"]
    assert all(rule["resourceNames"] in (["web"], ["web-summary"]) for rule in rules)
    verbs = {(r["resources"][0], v) for r in rules for v in r["verbs"]}
    assert verbs == {("loadtests/status", "patch"), ("configmaps", "patch")}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"]}]
