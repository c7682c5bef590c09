"""ops/deploy/k8s validated offline: each resource with kubernetes-validate's bundled schemas (strict: an
unknown field fails), the KEDA ScaledObject with KEDA's CRD schema and the prometheus trigger's
documented fields; then what must agree with the code: grace period, probes, variables, the image."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import promql_parser
import pytest
from packaging.version import Version

from campaign.processes import WORKER_SHUTDOWN_TIMEOUT_MS
from campaign.service.config import ServiceConfig
from tests.unit.deploy.files import (
    DOCKERFILE,
    PYPROJECT,
    SECRET_NAME,
    containers,
    environment_read,
    kubernetes_resource,
    kubernetes_resources,
    option,
)

# The oldest Kubernetes these files claim (KEDA 2.16 runs on 1.29 and later) and the newest schema shipped.
_SHIPPED = [v for v in kubernetes_validate.utils.all_versions() if Version(v) >= Version("1.29")]
KUBERNETES_VERSIONS = (_SHIPPED[0], _SHIPPED[-1])
KEDA_SCHEMA = json.loads(Path(__file__).with_name("keda_scaledobject.schema.json").read_text())
# KEDA's prometheus scaler (keda.sh/docs/scalers/prometheus): the CRD leaves a trigger's metadata open.
PROMETHEUS_TRIGGER = {
    "type": "object",
    "required": ["serverAddress", "query", "threshold"],
    "additionalProperties": False,
    "properties": {
        "serverAddress": {"type": "string", "pattern": "^https?://[^/]+"},
        "query": {"type": "string", "minLength": 1},
        "threshold": {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"},
        "activationThreshold": {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"},
        "namespace": {"type": "string"},
        "customHeaders": {"type": "string"},
        "queryParameters": {"type": "string"},
        "ignoreNullValues": {"enum": ["true", "false"]},
        "unsafeSsl": {"enum": ["true", "false"]},
        "timeout": {"type": "string", "pattern": "^[0-9]+$"},
        "authModes": {"type": "string"},
    },
}
WORKER = kubernetes_resource("Deployment", "campaign-worker")
SERVE = kubernetes_resource("Deployment", "campaign-serve")
SCALED_OBJECT = kubernetes_resource("ScaledObject", "campaign-worker")


def name_of(resource: dict[str, Any]) -> str:
    return f"{resource['kind']}/{resource['metadata']['name']}"


def keda_errors(scaled_object: dict[str, Any]) -> list[str]:
    found = [e.message for e in jsonschema.Draft202012Validator(KEDA_SCHEMA).iter_errors(scaled_object)]
    for trigger in scaled_object["spec"]["triggers"]:
        if trigger["type"] == "prometheus":
            checker = jsonschema.Draft202012Validator(PROMETHEUS_TRIGGER)
            found += [e.message for e in checker.iter_errors(trigger["metadata"])]
    return found


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(
    "resource", [r for r in kubernetes_resources() if r["apiVersion"] != "keda.sh/v1alpha1"], ids=name_of
)
def test_each_resource_is_valid_kubernetes(resource: dict[str, Any], version: str) -> None:
    kubernetes_validate.validate(resource, version, strict=True)


def test_a_misspelt_field_is_refused_by_the_strict_validation() -> None:
    broken = copy.deepcopy(WORKER)
    spec = broken["spec"]["template"]["spec"]
    spec["terminationGracePeriodSecond"] = spec.pop("terminationGracePeriodSeconds")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)


def test_the_scaled_object_is_valid_against_kedas_schema() -> None:
    assert keda_errors(SCALED_OBJECT) == []


@pytest.mark.parametrize(
    "path, value",
    [
        (("spec", "minReplicasCount"), 1),  # misspelt
        (("spec", "triggers", 0, "metadata", "threshold"), 20),  # a number: the CRD wants strings
        (("spec", "triggers", 0, "metadata", "serverAdress"), "http://prometheus:9090"),
        (("spec", "advanced", "horizontalPodAutoscalerConfig", "behavior", "scaleDown", "window"), 600),
    ],
)
def test_a_wrong_scaled_object_is_refused(path: tuple[Any, ...], value: Any) -> None:
    broken = copy.deepcopy(SCALED_OBJECT)
    node = broken
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    assert keda_errors(broken)


def test_the_scaled_object_scales_the_worker_deployment_never_to_zero() -> None:
    spec = SCALED_OBJECT["spec"]
    assert spec["scaleTargetRef"]["name"] == WORKER["metadata"]["name"]
    assert spec["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
    assert spec["minReplicaCount"] >= 1
    assert spec["maxReplicaCount"] > spec["minReplicaCount"]
    scale_down = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
    assert scale_down["stabilizationWindowSeconds"] > 0


def test_the_trigger_counts_ready_delayed_and_in_flight_jobs_but_not_dead_ones() -> None:
    """Parsed as PromQL: one sum, over each queue and state once, of the gauge's ready, delayed and
    in-flight states (a dead letter needs an operator, not a worker)."""
    (trigger,) = SCALED_OBJECT["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    query = promql_parser.parse(trigger["metadata"]["query"])
    assert isinstance(query, promql_parser.AggregateExpr)
    assert str(query.op) == "sum" and query.modifier is None  # one number for the whole deployment
    per_queue = query.expr
    assert isinstance(per_queue, promql_parser.AggregateExpr) and str(per_queue.op) == "max"
    assert per_queue.modifier is not None and set(per_queue.modifier.labels) == {"queue", "state"}
    selector = per_queue.expr
    assert isinstance(selector, promql_parser.VectorSelector)
    assert selector.name == "campaign_queue_messages"
    (state,) = [m for m in selector.matchers.matchers if m.name == "state"]
    assert state.op == promql_parser.MatchOp.Re
    assert set(state.value.split("|")) == {"ready", "delayed", "in_flight"}


def test_the_threshold_is_the_jobs_one_worker_pod_runs_at_once() -> None:
    (container,) = containers(WORKER)
    slots = int(option(container["args"], "--processes")) * int(option(container["args"], "--threads"))
    assert float(SCALED_OBJECT["spec"]["triggers"][0]["metadata"]["threshold"]) == slots


def test_the_worker_grace_period_outlasts_its_shutdown_timeout() -> None:
    grace = WORKER["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > WORKER_SHUTDOWN_TIMEOUT_MS / 1000


def test_the_service_grace_period_outlasts_its_pre_stop_and_its_wait_for_requests() -> None:
    (container,) = containers(SERVE)
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    grace = SERVE["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > float(pre_stop[1]) + ServiceConfig().shutdown_timeout_s


def probed_port(container: dict[str, Any], probe: str) -> tuple[int, str]:
    """(container port, path) a probe asks: a named port resolved through the container's ports."""
    get = container[probe]["httpGet"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    return (ports[get["port"]] if isinstance(get["port"], str) else get["port"]), get["path"]


@pytest.mark.parametrize(
    "deployment, port_option",
    [(WORKER, "--metrics-port"), (SERVE, "--port")],
    ids=["worker", "serve"],
)
def test_probes_ask_the_ports_and_paths_the_processes_serve(
    deployment: dict[str, Any], port_option: str
) -> None:
    (container,) = containers(deployment)
    port = int(option(container["args"], port_option))
    assert probed_port(container, "livenessProbe") == (port, "/healthz")
    assert probed_port(container, "readinessProbe") == (port, "/readyz")
    if "startupProbe" in container:
        assert probed_port(container, "startupProbe")[0] == port
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port)
    assert annotations["prometheus.io/path"] == "/metrics"


def test_the_service_listens_on_every_interface_and_the_service_reaches_its_port() -> None:
    (container,) = containers(SERVE)
    assert option(container["args"], "--host") == "0.0.0.0"
    service = kubernetes_resource("Service", "campaign-serve")
    assert service["spec"]["selector"].items() <= SERVE["spec"]["template"]["metadata"]["labels"].items()
    names = {p["name"] for p in container["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= names


def test_each_disruption_budget_selects_its_deployments_pods() -> None:
    budgets = [r for r in kubernetes_resources() if r["kind"] == "PodDisruptionBudget"]
    for deployment in (WORKER, SERVE):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        matching = [b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert len(matching) == 1, name_of(deployment)


def test_every_variable_set_is_one_the_settings_read_and_no_secret_is_written() -> None:
    read = environment_read()
    config = kubernetes_resource("ConfigMap", "campaign-config")
    assert set(config["data"]) <= read
    assert not {name for name in config["data"] if SECRET_NAME.search(name)}
    for deployment in (WORKER, SERVE):
        (container,) = containers(deployment)
        assert [source["configMapRef"]["name"] for source in container["envFrom"]] == ["campaign-config"]
        for variable in container["env"]:
            assert variable["name"] in read, variable["name"]
            if SECRET_NAME.search(variable["name"]):
                assert "value" not in variable, variable["name"]
                assert variable["valueFrom"]["secretKeyRef"]["key"] == variable["name"]
    assert not [r for r in kubernetes_resources() if r["kind"] == "Secret"]


def test_the_config_maps_values_are_accepted_by_the_settings() -> None:
    from schemas.settings import Settings

    data = kubernetes_resource("ConfigMap", "campaign-config")["data"]
    settings = Settings.from_environ(data)
    assert settings.region == data["KALEYRA_REGION"]


def test_the_pods_run_as_the_images_user_without_privileges() -> None:
    uid, _, gid = next(
        line.split()[1] for line in DOCKERFILE.read_text().splitlines() if line.startswith("USER ")
    ).partition(":")
    for deployment in (WORKER, SERVE):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (
            int(uid),
            int(gid),
        )
        for container in pod["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["resources"]["requests"].keys() >= {"cpu", "memory"}
            assert container["image"] == f"kaleyra-campaigns:{PYPROJECT['project']['version']}"
