"""Every `campaign` command line in the deployment files (the image's CMD, compose's commands, the
Kubernetes args) is one the real CLI parser takes, with the values the files rely on."""

from __future__ import annotations

import argparse
import json

import pytest
import yaml

from campaign.cli import _parser
from tests.unit.deploy.files import COMPOSE, DOCKERFILE, containers, kubernetes_resources

# The metrics contract of issue 22 (`campaign worker --metrics-port N`), written against before the flag
# lands; once the parser knows it, it is parsed like any other.
PENDING_CONTRACT = "--metrics-port"


def command_lines() -> dict[str, list[str]]:
    lines = {}
    cmd = next(line for line in DOCKERFILE.read_text().splitlines() if line.startswith("CMD "))
    lines["Dockerfile CMD"] = json.loads(cmd.removeprefix("CMD "))
    for name, service in yaml.safe_load(COMPOSE.read_text())["services"].items():
        if "build" in service:  # this project's image
            lines[f"compose {name}"] = service["command"]
    for resource in kubernetes_resources():
        if resource["kind"] == "Deployment":
            for container in containers(resource):
                lines[f"k8s {resource['metadata']['name']}"] = container["args"]
    return lines


def parse(arguments: list[str]) -> argparse.Namespace:
    namespace, unknown = _parser().parse_known_args(arguments)
    if unknown:
        assert unknown[0] == PENDING_CONTRACT and len(unknown) == 2, unknown
        assert int(unknown[1]) > 0
    return namespace


@pytest.mark.parametrize("where, arguments", command_lines().items())
def test_the_cli_takes_the_command_line(where: str, arguments: list[str]) -> None:
    namespace = parse(arguments)
    assert namespace.run.__name__ == f"_{arguments[0]}"


def test_every_worker_and_service_command_line_is_found() -> None:
    commands = {where: arguments[0] for where, arguments in command_lines().items()}
    assert commands == {
        "Dockerfile CMD": "worker",
        "compose worker": "worker",
        "compose serve": "serve",
        "compose simulator": "simulate",
        "k8s campaign-worker": "worker",
        "k8s campaign-serve": "serve",
    }


def test_a_misspelt_option_is_refused() -> None:
    with pytest.raises(AssertionError):
        parse(["worker", "--threds", "10"])
