"""What a LoadTest runs on: its ConfigMap, token Secret, manager Service, ServiceAccount and RBAC,
manager Pod and worker Pods — built as plain manifests from the checked spec.

Why plain dicts from pure functions: each object can be tested without a cluster, the operator's
handlers only create them (with kopf's ownerReferences, so deleting the LoadTest deletes them), and
a user's pod template overlays ours field by field (``overlay``; parse_spec has already laid it over
the operator's defaults, so the LoadTest's own values win over both). Pods run as non-root with a
read-only root filesystem and no privilege escalation; /gaggle/work is an emptyDir for logs and
reports (HOME and TMPDIR point there; not /tmp, which the local test cluster shares with its host).
"""

from __future__ import annotations

from typing import Any

from gaggle.kits import EVERY_ADDRESS, GRPC_PORT, METRICS_PORT
from gaggle_operator.comparison import BASELINE_DIR, BASELINE_FILE, REPORT_KEY
from gaggle_operator.defaults import CONTAINER
from gaggle_operator.overlay import overlay
from gaggle_operator.spec import SCRIPT_DIR, LoadTestSpec

GROUP, VERSION, PLURAL = "gaggle.dev", "v1alpha1", "loadtests"
TOKEN_KEY = "token"
WORK_DIR = "/gaggle/work"
Manifest = dict[str, Any]


# A mesh's sidecar outlives the run (the pod stays Running) and its proxy sits between the
# workers and the manager: the pods opt out of injection unless a template's annotations say so.
NO_MESH = {"sidecar.istio.io/inject": "false", "linkerd.io/inject": "disabled"}


def names(loadtest: str) -> dict[str, str]:
    """Every child's name, derived from the LoadTest's (the operator finds them again by name)."""
    return {
        "script": f"{loadtest}-script",
        "service": f"{loadtest}-manager",
        "account": f"{loadtest}-manager",
        "manager": f"{loadtest}-manager",
        "worker": f"{loadtest}-worker",
        "summary": f"{loadtest}-summary",
        "policy": f"{loadtest}-network",
    }


def labels(loadtest: str, role: str, run: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "gaggle",
        "app.kubernetes.io/instance": loadtest,
        "app.kubernetes.io/component": role,
        "gaggle.dev/loadtest": loadtest,
        "gaggle.dev/role": role,
        "gaggle.dev/run": run,
    }


def script_config_map(loadtest: str, spec: LoadTestSpec) -> Manifest | None:
    if spec.script.inline is None:
        return None
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": names(loadtest)["script"]},
        "data": {"loadtest.py": spec.script.inline},
    }


def token_name(loadtest: str, uid: str) -> str:
    """The gRPC token's Secret, named for the LoadTest's uid: the operator may not read Secrets
    (a cluster-wide get would read them all), so it cannot tell whose a Secret of a taken name
    is — a LoadTest deleted and re-created at once would find its predecessor's."""
    return f"{loadtest}-token-{uid[:8]}"


def token_secret(loadtest: str, uid: str, token: str) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": token_name(loadtest, uid)},
        "type": "Opaque",
        "stringData": {TOKEN_KEY: token},
    }


def manager_service(loadtest: str, run: str) -> Manifest:
    """A ClusterIP Service, not a headless one: its name resolves at once, so workers that start
    before the manager meet refused connections, which gRPC retries within 3 s, rather than a
    missing DNS record, whose re-resolution gRPC backs off for up to two minutes (seen on the
    test cluster's real CoreDNS: joins took a minute). Monitors scrape its endpoints either way."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": names(loadtest)["service"],
            "labels": labels(loadtest, "manager", run),
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(METRICS_PORT),
                "prometheus.io/path": "/metrics",
            },
        },
        "spec": {
            "selector": {"gaggle.dev/loadtest": loadtest, "gaggle.dev/role": "manager"},
            "ports": [
                {"name": "grpc", "port": GRPC_PORT, "targetPort": GRPC_PORT},
                {"name": "metrics", "port": METRICS_PORT, "targetPort": METRICS_PORT},
            ],
        },
    }


def manager_rbac(loadtest: str) -> list[Manifest]:
    """The manager may patch its LoadTest's status and its summary ConfigMap: what it calls
    (manage.py, merge patches need no read), nothing else; the operator owns the rest."""
    account = names(loadtest)["account"]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": account},
            "rules": [
                {
                    "apiGroups": [GROUP],
                    "resources": [f"{PLURAL}/status"],
                    "resourceNames": [loadtest],
                    "verbs": ["patch"],
                },
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "resourceNames": [names(loadtest)["summary"]],
                    "verbs": ["patch"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": account},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account},
            "subjects": [{"kind": "ServiceAccount", "name": account}],
        },
    ]


def network_policy(loadtest: str, spec: LoadTestSpec, run: str) -> Manifest | None:
    """With ``networkPolicy.enabled``: let the LoadTest's pods reach each other (workers join
    the manager's gRPC port) and anyone, or ``metricsFrom``, scrape the metrics port, where a
    default-deny policy would drop it. Ingress only: declaring Egress would isolate the pods'
    egress, and the target and the API server are the namespace owner's to allow."""
    if not spec.network_policy:
        return None
    own = {"matchLabels": {"gaggle.dev/loadtest": loadtest}}
    metrics: Manifest = {"ports": [{"protocol": "TCP", "port": METRICS_PORT}]}
    if spec.metrics_from is not None:
        metrics["from"] = list(spec.metrics_from)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": names(loadtest)["policy"], "labels": labels(loadtest, "network", run)},
        "spec": {
            "podSelector": own,
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": own}]}, metrics],
        },
    }


def summary_config_map(loadtest: str) -> Manifest:
    """Created empty by the operator; the manager writes the full JSON summary into it."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": names(loadtest)["summary"]},
        "data": {},
    }


def _volumes(loadtest: str, spec: LoadTestSpec) -> tuple[list[Manifest], list[Manifest]]:
    volumes: list[Manifest] = [{"name": "work", "emptyDir": {}}]
    mounts: list[Manifest] = [{"name": "work", "mountPath": WORK_DIR}]
    if spec.script.inline is not None:
        volumes.append({"name": "script", "configMap": {"name": names(loadtest)["script"]}})
        mounts.append({"name": "script", "mountPath": SCRIPT_DIR, "readOnly": True})
    elif spec.script.config_map is not None:
        name, key = spec.script.config_map
        volumes.append(
            {"name": "script", "configMap": {"name": name, "items": [{"key": key, "path": key}]}}
        )
        mounts.append({"name": "script", "mountPath": SCRIPT_DIR, "readOnly": True})
    for i, (name, path) in enumerate(spec.extra_config_maps):
        volumes.append({"name": f"extra-{i}", "configMap": {"name": name}})
        mounts.append({"name": f"extra-{i}", "mountPath": path, "readOnly": True})
    return volumes, mounts


def _pod(
    loadtest: str, uid: str, spec: LoadTestSpec, role: str, name: str, run: str, command: list[str]
) -> Manifest:
    volumes, mounts = _volumes(loadtest, spec)
    token = {"secretKeyRef": {"name": token_name(loadtest, uid), "key": TOKEN_KEY}}
    container: Manifest = {
        "name": CONTAINER,
        "image": spec.image,
        "imagePullPolicy": spec.image_pull_policy,
        "command": command[:1],
        "args": command[1:],
        "env": [
            {"name": "GAGGLE_TOKEN", "valueFrom": token},
            {"name": "HOME", "value": WORK_DIR},
            {"name": "TMPDIR", "value": WORK_DIR},
            {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        "volumeMounts": mounts,
        "workingDir": WORK_DIR,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    pod: Manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": labels(loadtest, role, run),
            "annotations": dict(NO_MESH),
        },
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 30,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "runAsGroup": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [container],
            "volumes": volumes,
        },
    }
    template = spec.manager_template if role == "manager" else spec.worker_template
    return dict(overlay(pod, template))


def manager_pod(
    loadtest: str,
    namespace: str,
    spec: LoadTestSpec,
    run: str,
    uid: str,
    baseline: str | None = None,
    unjudged: tuple[str, ...] = (),
) -> Manifest:
    """``baseline``: the history ConfigMap of the run to compare with (its JSON report mounted
    for ``--baseline``); ``unjudged``: regression rules with no baseline run yet (comparison.py)."""
    abort = ["--abort-on-fail"] if spec.abort_on_fail else []
    compare = ["--baseline", BASELINE_FILE] if baseline else []
    command = [  # a line per thought, each flag beside its value
        *("gaggle-operator", "manage", "--loadtest", loadtest, "--namespace", namespace),
        *("--run", run, *abort, *(f for rule in unjudged for f in ("--unjudged", rule))),
        *("--", "run", spec.script.file(), "--manager", "--expect-workers", str(spec.replicas)),
        # every address, IPv4 and IPv6: on an IPv6-only cluster the pod's address is v6
        *("--manager-bind-host", EVERY_ADDRESS, "--metrics-bind", f"[::]:{METRICS_PORT}"),
        *spec.gaggle_args(skip=unjudged),
        *compare,
    ]
    pod = _pod(loadtest, uid, spec, "manager", names(loadtest)["manager"], run, command)
    if baseline:
        items = [{"key": REPORT_KEY, "path": REPORT_KEY}]
        pod["spec"]["volumes"].append(
            {"name": "baseline", "configMap": {"name": baseline, "items": items}}
        )
        mount = {"name": "baseline", "mountPath": BASELINE_DIR, "readOnly": True}
        pod["spec"]["containers"][0]["volumeMounts"].append(mount)
    pod["spec"].setdefault("serviceAccountName", names(loadtest)["account"])
    ports = [
        {"name": "grpc", "containerPort": GRPC_PORT},
        {"name": "metrics", "containerPort": METRICS_PORT},
    ]
    pod["spec"]["containers"][0].setdefault("ports", ports)
    return pod


def worker_pod(
    loadtest: str, namespace: str, spec: LoadTestSpec, run: str, index: int, uid: str
) -> Manifest:
    manager = f"{names(loadtest)['service']}.{namespace}.svc"
    command = [
        *("gaggle", "run", spec.script.file(), "--worker", "--manager-host", manager),
        *("--manager-port", str(GRPC_PORT), "--join-timeout", str(spec.ready_timeout)),
        "--leave-on-sigterm",  # a deleted or evicted pod leaves; the LoadTest goes on
    ]
    name = f"{names(loadtest)['worker']}-{index}"
    pod = _pod(loadtest, uid, spec, "worker", name, run, command)
    pod["spec"]["automountServiceAccountToken"] = False  # workers never talk to Kubernetes
    if spec.spread:
        term = {
            "labelSelector": {
                "matchLabels": {"gaggle.dev/loadtest": loadtest, "gaggle.dev/role": "worker"}
            },
            "topologyKey": "kubernetes.io/hostname",
        }
        affinity = {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 100, "podAffinityTerm": term}
                ]
            }
        }
        pod["spec"]["affinity"] = overlay(affinity, pod["spec"].get("affinity", {}))
    return pod
