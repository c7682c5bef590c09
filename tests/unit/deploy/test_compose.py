"""ops/deploy/compose.yaml validated against the Compose Specification's JSON schema (as check-jsonschema
ships it), before and after `${...}` are filled in; then what must agree with the code and ops/."""

from __future__ import annotations

import copy
import importlib.resources
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from campaign.processes import WORKER_SHUTDOWN_TIMEOUT_MS
from campaign.service.config import ServiceConfig
from schemas.settings import parse_duration
from tests.unit.deploy.files import (
    COMPOSE,
    DEPLOY,
    ENV_EXAMPLE,
    REPO,
    SECRET_NAME,
    env_file,
    environment_read,
    interpolate,
    interpolated_names,
    option,
)

COMPOSE_SPEC = json.loads(
    importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    .joinpath("compose-spec.json")
    .read_text()
)
# The services that run this project's image, and so read its settings.
CAMPAIGN_SERVICES = ("worker", "serve", "simulator")
# What an operator fills in ops/deploy/.env: env.example's names, each given a value.
FILLED_IN = {name: value or f"placeholder-{name.lower()}" for name, value in env_file(ENV_EXAMPLE).items()}


def compose_errors(document: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(COMPOSE_SPEC)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The file as `docker compose` reads it: variables filled in from env.example."""
    return yaml.safe_load(interpolate(COMPOSE.read_text(), FILLED_IN))


def mounted(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of a service's bind mounts."""
    pairs = (volume.split(":")[:2] for volume in service["volumes"])
    return {target: (DEPLOY / source).resolve() for source, target in pairs if source.startswith(".")}


def test_the_compose_file_is_valid_against_the_compose_specification() -> None:
    assert compose_errors(yaml.safe_load(COMPOSE.read_text())) == []


def test_the_compose_file_filled_in_is_valid_against_the_compose_specification(
    compose: dict[str, Any],
) -> None:
    assert compose_errors(compose) == []


@pytest.mark.parametrize(
    "service, field, value",
    [
        ("worker", "stop_grace_periods", "90s"),  # misspelt
        ("worker", "profiles", "simulator"),  # a string, not a list
        ("redis", "healthcheck", {"test": ["CMD", "redis-cli", "ping"], "intervals": "5s"}),
    ],
)
def test_a_wrong_service_is_refused(compose: dict[str, Any], service: str, field: str, value: Any) -> None:
    broken = copy.deepcopy(compose)
    broken["services"][service][field] = value
    assert compose_errors(broken)


def test_every_variable_is_in_env_example_and_a_missing_secret_stops_compose() -> None:
    text = COMPOSE.read_text()
    names = dict(interpolated_names(text))
    assert set(names) <= set(FILLED_IN)
    for name, operator in names.items():
        if SECRET_NAME.search(name) and name != "CAMPAIGN_DLR_TOKEN":  # an empty token: the receiver is off
            assert operator == ":?", f"{name} must be required (${{{name}:?...}})"
            with pytest.raises(ValueError, match=name):
                interpolate(text, {k: v for k, v in FILLED_IN.items() if k != name})


def test_no_secret_is_written_in_the_compose_file() -> None:
    for service in yaml.safe_load(COMPOSE.read_text())["services"].values():
        for name, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(name):
                assert "${" in str(value), name
    assert all(not value for name, value in env_file(ENV_EXAMPLE).items() if SECRET_NAME.search(name))


def test_the_campaign_services_set_only_variables_the_settings_read(compose: dict[str, Any]) -> None:
    read = environment_read()
    for name in CAMPAIGN_SERVICES:
        environment = compose["services"][name]["environment"]
        assert set(environment) <= read, name


def test_the_campaign_containers_read_the_optional_tuning_file_of_settings_only(
    compose: dict[str, Any],
) -> None:
    for name in CAMPAIGN_SERVICES:
        assert compose["services"][name]["env_file"] == [{"path": "campaign.env", "required": False}], name
    example = DEPLOY / "campaign.env.example"
    # Every line a variable to uncomment: one the settings read, and no secret (those go in .env).
    tuned = env_file_commented(example)
    assert tuned and set(tuned) <= environment_read()
    assert not [name for name in tuned if SECRET_NAME.search(name)]


def env_file_commented(path: Path) -> dict[str, str]:
    """An env file's `# NAME=value` lines, uncommented."""
    lines = (
        line.removeprefix("# ") for line in path.read_text().splitlines() if line.startswith("# CAMPAIGN_")
    )
    return {name: value for name, _, value in (line.partition("=") for line in lines)}


def test_redis_runs_ops_redis_conf_with_aof_on_a_named_volume(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    mounts = mounted(redis)
    conf = redis["command"][1]
    assert mounts[conf] == REPO / "ops" / "redis.conf"
    assert "appendonly yes" in mounts[conf].read_text()
    data_dir = option(redis["command"], "--dir")
    named = [volume.split(":")[0] for volume in redis["volumes"] if volume.split(":")[1] == data_dir]
    assert named and named[0] in compose["volumes"]
    assert option(redis["command"], "--bind") == "0.0.0.0"


def seconds(duration: str) -> float:
    """A compose duration such as `90s`, in seconds."""
    parsed = parse_duration(duration)
    assert parsed is not None, duration
    return parsed


def test_workers_scale_and_stop_gracefully(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert "container_name" not in worker and "ports" not in worker  # `--scale worker=N` needs neither
    assert worker["command"][0] == "worker"
    assert seconds(worker["stop_grace_period"]) > WORKER_SHUTDOWN_TIMEOUT_MS / 1000
    assert worker["init"] is True


def test_serve_listens_on_every_interface_on_its_published_port(compose: dict[str, Any]) -> None:
    serve = compose["services"]["serve"]
    assert serve["command"][0] == "serve"
    assert option(serve["command"], "--host") == "0.0.0.0"
    port = option(serve["command"], "--port")
    assert [mapping.rsplit(":", 1)[1] for mapping in serve["ports"]] == [port]
    assert seconds(serve["stop_grace_period"]) > ServiceConfig().shutdown_timeout_s
    assert f"127.0.0.1:{port}/readyz" in serve["healthcheck"]["test"][-1]


def test_only_the_simulator_is_behind_a_profile(compose: dict[str, Any]) -> None:
    profiled = {
        name: service["profiles"] for name, service in compose["services"].items() if "profiles" in service
    }
    assert profiled == {"simulator": ["simulator"]}
    simulator = compose["services"]["simulator"]
    assert simulator["command"][0] == "simulate"
    assert option(simulator["command"], "--host") == "0.0.0.0"


def test_prometheus_scrapes_each_worker_and_serve_on_their_ports(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    scraped = {
        (name, sd["port"])
        for job in config["scrape_configs"]
        for sd in job.get("dns_sd_configs", [])
        for name in sd["names"]
    }
    services = compose["services"]
    assert ("worker", int(option(services["worker"]["command"], "--metrics-port"))) in scraped
    assert ("serve", int(option(services["serve"]["command"], "--port"))) in scraped
    assert all(name in services for name, _ in scraped)


def test_prometheus_loads_the_alert_rules_of_ops_prometheus(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    mounts = mounted(compose["services"]["prometheus"])
    (rules,) = config["rule_files"]
    assert mounts[str(Path(rules).parent)] == REPO / "ops" / "prometheus"
    command = compose["services"]["prometheus"]["command"]
    (config_file,) = [a.removeprefix("--config.file=") for a in command if a.startswith("--config.file=")]
    assert mounts[config_file] == DEPLOY / "prometheus" / "prometheus.yml"


def test_grafana_is_provisioned_with_the_dashboard_of_ops_grafana(compose: dict[str, Any]) -> None:
    mounts = mounted(compose["services"]["grafana"])
    provisioning = DEPLOY / "grafana" / "provisioning"
    assert mounts["/etc/grafana/provisioning"] == provisioning
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "campaigns.yml").read_text())["providers"]
    assert mounts[provider["options"]["path"]] == REPO / "ops" / "grafana"
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert source["url"] == "http://prometheus:9090" and "prometheus" in compose["services"]
