"""The deployment files of ops/deploy read for the tests, and the facts in the code they must agree with."""

from __future__ import annotations

import re
import shlex
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from campaign.service.dlr_config import DlrConfig
from campaign.service.pages.session import secret_from_environ
from schemas.settings import Settings

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "ops" / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / "env.example"
K8S = DEPLOY / "k8s"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
# Names that hold a secret: never a literal value in a deployment file.
SECRET_NAME = re.compile(r"KEY|TOKEN|PASSWORD|SECRET|REDIS_URL", re.IGNORECASE)
_INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document is not None]


def kubernetes_resources() -> list[dict[str, Any]]:
    return [resource for path in sorted(K8S.glob("*.yaml")) for resource in yaml_documents(path)]


def kubernetes_resource(kind: str, name: str) -> dict[str, Any]:
    found = [r for r in kubernetes_resources() if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(found) == 1, f"{len(found)} {kind} named {name!r} in {K8S}"
    return found[0]


def containers(resource: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(resource["spec"]["template"]["spec"]["containers"])


class _RecordingEnviron(dict[str, str]):
    """An empty environment that notes every name it is asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        self.asked.add(name)
        return super().get(name, default)

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        return super().__getitem__(name)

    def __contains__(self, name: object) -> bool:
        self.asked.add(str(name))
        return super().__contains__(name)


def environment_read() -> frozenset[str]:
    """Every variable the processes' settings read: the names `from_environ` asks an environment for."""
    environ = _RecordingEnviron()
    Settings.from_environ(environ)
    DlrConfig.from_environ(environ)
    secret_from_environ(environ)
    return frozenset(environ.asked)


def interpolate(text: str, environ: Mapping[str, str]) -> str:
    """Compose's `${NAME}`, `${NAME:-default}` and `${NAME:?error}`, as `docker compose` expands them."""

    def value(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"] or ""
        given = environ.get(name)
        unset = given is None if op in ("-", "?") else not given  # `:-` and `:?` take empty as unset
        if op is not None and unset:
            if op.endswith("?"):
                raise ValueError(f"{name} is required: {arg}")
            return arg
        return given or ""

    return _INTERPOLATION.sub(value, text.replace("$$", "\0")).replace("\0", "$")


def interpolated_names(text: str) -> Iterator[tuple[str, str | None]]:
    """(name, operator) of every `${...}` in a compose file."""
    for match in _INTERPOLATION.finditer(text):
        yield match["name"], match["op"]


def env_file(path: Path) -> dict[str, str]:
    """A compose env file: NAME=value lines, # comments."""
    pairs = (line.partition("=") for line in path.read_text().splitlines() if line and line[0] != "#")
    return {name.strip(): value.strip() for name, _, value in pairs}


def option(arguments: list[str], name: str) -> str:
    """The value given to `--name` in a command line."""
    assert name in arguments, f"{name} missing from {shlex.join(arguments)}"
    return arguments[arguments.index(name) + 1]
