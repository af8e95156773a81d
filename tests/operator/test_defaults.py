"""The operator's defaults for every LoadTest, from its environment (the chart's ``defaults``
values): a bad one is refused naming the variable and its value, and a LoadTest's own
``template`` and ``cleanup`` always win over them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from typing import Any

import pytest

from gaggle_operator.children import manager_pod, worker_pod
from gaggle_operator.defaults import Defaults, DefaultsError, from_env, quantity
from gaggle_operator.spec import SpecError, cleanup_of, parse_spec
from tests.conftest import ROOT
from tests.operator.test_spec import spec

WORKER = {"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}}
MANAGER = {"requests": {"cpu": "100m"}, "limits": {"cpu": "1", "memory": "128Mi"}}


def env(**variables: Any) -> dict[str, str]:
    return {f"GAGGLE_{k}": v if isinstance(v, str) else json.dumps(v) for k, v in variables.items()}


def test_the_environment_sets_every_default() -> None:
    found = from_env(env(MANAGER_RESOURCES=MANAGER, WORKER_RESOURCES=WORKER,
                         CLEANUP_POLICY="OnSuccess", TTL_SECONDS_AFTER_FINISHED="600"))  # fmt: skip
    assert found == Defaults(manager_resources=MANAGER, worker_resources=WORKER,
                             cleanup_policy="OnSuccess", cleanup_ttl=600)  # fmt: skip


def test_unset_or_empty_variables_change_nothing() -> None:
    assert from_env({}) == Defaults() == Defaults({}, {}, "Never", 0)
    empty = env(MANAGER_RESOURCES="", WORKER_RESOURCES=" ", CLEANUP_POLICY="",
                TTL_SECONDS_AFTER_FINISHED="")  # fmt: skip
    assert from_env(empty) == Defaults()
    assert from_env(env(WORKER_RESOURCES={})) == Defaults()
    # nothing in the template: the pods are exactly what they were without defaults
    assert parse_spec(spec(), defaults=Defaults()) == parse_spec(spec())


def test_numbers_become_quantities_as_kubectl_shows_them() -> None:
    found = from_env(env(WORKER_RESOURCES={"requests": {"cpu": 0.5, "memory": 1e9},
                                           "limits": {"cpu": 2}}))  # fmt: skip
    assert found.worker_resources == {"requests": {"cpu": "0.5", "memory": "1000000000"},
                                      "limits": {"cpu": "2"}}  # fmt: skip


@pytest.mark.parametrize(
    ("text", "amount"),
    [("500m", "0.5"), ("2", "2"), ("1.5", "1.5"), ("256Mi", str(256 * 2**20)), ("1Gi", str(2**30)),
     ("1k", "1000"), ("1M", "1000000"), ("1e3", "1000"), ("2E-3", "0.002"), (".5", "0.5"),
     ("+1", "1"), ("1E", str(10**18)), (3, "3"), (0.25, "0.25")],
)  # fmt: skip
def test_kubernetes_quantities_are_read(text: object, amount: str) -> None:
    assert quantity(text) == Decimal(amount)


@pytest.mark.parametrize("text", ["lots", "-1", "1 Gi", "1gi", "1GB", "1e", "", "m", True, -2])
def test_what_is_not_a_quantity_is_none(text: object) -> None:
    assert quantity(text) is None


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (env(WORKER_RESOURCES="{cpu: 1}"),
         "GAGGLE_WORKER_RESOURCES: '{cpu: 1}' is not allowed; use JSON (Expecting property name"),
        (env(WORKER_RESOURCES=["500m"]),
         'GAGGLE_WORKER_RESOURCES: \'["500m"]\' is not allowed; use a JSON object such as'),
        (env(MANAGER_RESOURCES={"cpu": "1"}),
         "GAGGLE_MANAGER_RESOURCES: '{\"cpu\": \"1\"}' is not allowed; 'cpu' is not a resources "
         "field; use requests and limits"),
        (env(MANAGER_RESOURCES={"requests": "1"}), "requests must be an object"),
        (env(WORKER_RESOURCES={"limits": {"cpus": "1"}}),
         "limits: 'cpus' is not a resource name; use cpu, memory, ephemeral-storage"),
        (env(WORKER_RESOURCES={"requests": {"memory": "1GB"}}),
         "requests.memory: '1GB' is not a Kubernetes quantity such as 500m, 2, 256Mi or 1Gi"),
        (env(WORKER_RESOURCES={"requests": {"cpu": -1}}), "requests.cpu: -1 is not"),
        (env(WORKER_RESOURCES={"requests": {"cpu": True}}), "requests.cpu: True is not"),
        (env(WORKER_RESOURCES={"requests": {"cpu": "2"}, "limits": {"cpu": "1500m"}}),
         "requests.cpu 2 is more than limits.cpu 1500m (Kubernetes refuses such a pod)"),
        (env(WORKER_RESOURCES={"claims": [{"name": "gpu"}]}), "'claims' is not a resources field"),
        (env(CLEANUP_POLICY="always"),
         "GAGGLE_CLEANUP_POLICY: 'always' is not allowed; use one of Never, OnSuccess, Always"),
        (env(TTL_SECONDS_AFTER_FINISHED="-1"),
         "GAGGLE_TTL_SECONDS_AFTER_FINISHED: '-1' is not allowed; use a whole number of seconds"),
        (env(TTL_SECONDS_AFTER_FINISHED="1h"), "GAGGLE_TTL_SECONDS_AFTER_FINISHED: '1h' is not"),
        (env(TTL_SECONDS_AFTER_FINISHED="2.5"), "GAGGLE_TTL_SECONDS_AFTER_FINISHED: '2.5' is not"),
        (env(IMAGE_PULL_SECRETS="regcred,My Secret"),
         "GAGGLE_IMAGE_PULL_SECRETS: 'regcred,My Secret' is not allowed; use Secret names"),
    ],
)  # fmt: skip
def test_a_bad_default_is_refused_naming_the_variable_and_value(
    variables: dict[str, str], message: str
) -> None:
    with pytest.raises(DefaultsError) as caught:
        from_env(variables)
    assert message in str(caught.value)
    assert caught.value.variable in variables
    assert caught.value.value == next(iter(variables.values()))


def test_a_bad_default_stops_kopf_run_at_once_with_one_line() -> None:
    """No cluster is needed: kopf imports the handlers before it logs in, and stops there."""
    variables = {**os.environ, "GAGGLE_TTL_SECONDS_AFTER_FINISHED": "soon",
                 "KUBECONFIG": "/nonexistent"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "kopf", "run", "--standalone", "--all-namespaces",
         "-m", "gaggle_operator.handlers"],
        capture_output=True, text=True, timeout=60, env=variables, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "gaggle operator: GAGGLE_TTL_SECONDS_AFTER_FINISHED: 'soon' is not allowed; "
        "use a whole number of seconds ≥ 0"
    )
    assert "Traceback" not in done.stderr


# -- precedence: the LoadTest wins ---------------------------------------------------------------

DEFAULTS = Defaults(manager_resources=MANAGER, worker_resources=WORKER,
                    cleanup_policy="Always", cleanup_ttl=300)  # fmt: skip


def resources(pod: dict[str, Any]) -> dict[str, Any]:
    (gaggle,) = [c for c in pod["spec"]["containers"] if c["name"] == "gaggle"]
    return dict(gaggle.get("resources", {}))


def test_pods_get_the_default_resources_of_their_role() -> None:
    parsed = parse_spec(spec(), defaults=DEFAULTS)
    assert resources(worker_pod("web", "ns", parsed, "1", 0, "uid")) == WORKER
    assert resources(manager_pod("web", "ns", parsed, "1", "uid")) == MANAGER
    assert resources(worker_pod("web", "ns", parse_spec(spec()), "1", 0, "uid")) == {}


def test_a_template_overlays_the_default_resources_field_by_field() -> None:
    limits = {"limits": {"memory": "2Gi", "cpu": "4"}}
    template = {"spec": {"containers": [{"name": "gaggle", "resources": limits}]}}
    parsed = parse_spec(spec(workers={"template": template}), defaults=DEFAULTS)
    pod = worker_pod("web", "ns", parsed, "1", 0, "uid")
    assert resources(pod) == {"requests": {"cpu": "500m", "memory": "256Mi"},
                              "limits": {"memory": "2Gi", "cpu": "4"}}  # fmt: skip
    assert [c["name"] for c in pod["spec"]["containers"]] == ["gaggle"]
    # the manager's template is its own: the workers' changes nothing there
    assert resources(manager_pod("web", "ns", parsed, "1", "uid")) == MANAGER


def test_a_template_that_would_put_a_request_over_its_limit_is_refused() -> None:
    limits = {"limits": {"memory": "128Mi"}}
    template = {"spec": {"containers": [{"name": "gaggle", "resources": limits}]}}
    with pytest.raises(SpecError) as caught:
        parse_spec(spec(workers={"template": template}), defaults=DEFAULTS)
    message = str(caught.value)
    assert message.startswith("spec.workers.template.spec.containers[gaggle].resources: ")
    assert "requests.memory 256Mi is more than limits.memory 128Mi" in message
    assert "the operator's default resources fill what the template leaves out" in message
    # without the defaults the same template is fine
    assert parse_spec(spec(workers={"template": template})).worker_template == template


def test_a_templates_own_bad_quantity_is_named() -> None:
    requests = {"requests": {"cpu": "fast"}}
    template = {"spec": {"containers": [{"name": "gaggle", "resources": requests}]}}
    with pytest.raises(SpecError) as caught:
        parse_spec(spec(manager={"template": template}))
    assert str(caught.value) == (
        "spec.manager.template.spec.containers[gaggle].resources: {'requests': {'cpu': 'fast'}} "
        "is not allowed; requests.cpu: 'fast' is not a Kubernetes quantity such as 500m, 2, "
        "256Mi or 1Gi"
    )


@pytest.mark.parametrize(
    ("cleanup", "expected"),
    [
        (None, ("Always", 300)),
        ({}, ("Always", 300)),
        ({"policy": "Never"}, ("Never", 300)),
        ({"ttlSecondsAfterFinished": 0}, ("Always", 0)),
        ({"policy": "OnSuccess", "ttlSecondsAfterFinished": 5}, ("OnSuccess", 5)),
    ],
)
def test_each_cleanup_field_of_the_spec_wins_over_its_default(
    cleanup: dict[str, Any] | None, expected: tuple[str, int]
) -> None:
    given = spec(cleanup=cleanup)
    assert cleanup_of(given, DEFAULTS) == expected
    parsed = parse_spec(given, defaults=DEFAULTS)
    assert (parsed.cleanup_policy, parsed.cleanup_ttl) == expected
    assert cleanup_of(spec(), Defaults()) == ("Never", 0)  # no defaults: what it always was
