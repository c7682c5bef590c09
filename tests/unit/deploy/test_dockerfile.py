"""ops/deploy/Dockerfile read with dockerfile-parse: a small non-root image of this project, built from
its own pyproject.toml; and the build stage's sources built into a wheel offline, as `pip install .` would."""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser

from campaign.service.config import ServiceConfig
from tests.unit.deploy.files import DOCKERFILE, PYPROJECT, REPO, SECRET_NAME, option

# The Dockerfile reference's instructions: dockerfile-parse takes any word, a build would not.
INSTRUCTIONS = {
    "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME", "USER",
    "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL", "COMMENT",
}  # fmt: skip


@pytest.fixture(scope="module")
def dockerfile() -> DockerfileParser:
    return DockerfileParser(path=str(DOCKERFILE))


def stages(dockerfile: DockerfileParser) -> list[list[dict[str, Any]]]:
    """The instructions of each stage, in order (comments and the ARGs before the first FROM left out)."""
    found: list[list[dict[str, Any]]] = []
    for instruction in dockerfile.structure:
        if instruction["instruction"] == "FROM":
            found.append([])
        if found and instruction["instruction"] != "COMMENT":
            found[-1].append(instruction)
    return found


def values(stage: list[dict[str, Any]], name: str) -> list[str]:
    return [instruction["value"] for instruction in stage if instruction["instruction"] == name]


def exec_form(value: str) -> list[str]:
    """A JSON array of strings: anything else Docker would quietly run through `/bin/sh -c`."""
    parsed = json.loads(value)
    assert isinstance(parsed, list) and all(isinstance(part, str) for part in parsed), value
    return parsed


def test_every_instruction_is_a_dockerfile_instruction(dockerfile: DockerfileParser) -> None:
    unknown = {i["instruction"] for i in dockerfile.structure} - INSTRUCTIONS
    assert not unknown


def test_the_image_is_built_in_two_stages_from_a_pinned_slim_python(dockerfile: DockerfileParser) -> None:
    assert len(stages(dockerfile)) == 2
    for image in dockerfile.parent_images:
        name, _, tag = image.partition(":")
        assert name == "python" and tag.startswith("3.11-slim"), image
        assert tag != "latest"


def test_the_runtime_stage_runs_as_a_numeric_non_root_user(dockerfile: DockerfileParser) -> None:
    runtime = stages(dockerfile)[-1]
    users = values(runtime, "USER")
    assert users, "the runtime stage sets no USER: the image would run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdecimal() and int(uid) > 0
    assert gid.isdecimal() and int(gid) > 0
    # Nothing after the USER runs as root again.
    assert values(runtime, "USER") == users[-1:]


def test_the_build_stage_installs_this_project_from_its_pyproject_without_dev_extras(
    dockerfile: DockerfileParser,
) -> None:
    build = stages(dockerfile)[0]
    copied = {part.rstrip("/") for value in values(build, "COPY") for part in value.split()[:-1]}
    packages = {
        pattern.rstrip("*") for pattern in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    assert {"pyproject.toml", PYPROJECT["project"]["readme"]} | packages <= copied
    installs = [run for run in values(build, "RUN") if "pip install" in run]
    assert len(installs) == 1
    assert installs[0].rstrip().endswith("pip install .")  # the project itself: not -e, not .[dev]


def test_the_runtime_stage_copies_only_the_virtualenv(dockerfile: DockerfileParser) -> None:
    runtime = stages(dockerfile)[-1]
    assert [copy.split()[0] for copy in values(runtime, "COPY")] == ["--from=build"]


def test_the_entrypoint_is_the_projects_console_script(dockerfile: DockerfileParser) -> None:
    runtime = stages(dockerfile)[-1]
    (entrypoint,) = values(runtime, "ENTRYPOINT")
    assert exec_form(entrypoint) == ["campaign"]
    assert "campaign" in PYPROJECT["project"]["scripts"]


def test_the_default_command_is_a_worker_probed_on_its_metrics_port(dockerfile: DockerfileParser) -> None:
    runtime = stages(dockerfile)[-1]
    (cmd,) = values(runtime, "CMD")
    command = exec_form(cmd)
    assert command[0] == "worker"
    port = option(command, "--metrics-port")
    (healthcheck,) = values(runtime, "HEALTHCHECK")
    probe = exec_form(healthcheck[healthcheck.index("CMD") + len("CMD") :].strip())
    assert f"http://127.0.0.1:{port}/healthz" in probe[-1]
    exposed = {p for value in values(runtime, "EXPOSE") for p in value.split()}
    assert port in exposed


def test_the_services_default_ports_are_exposed(dockerfile: DockerfileParser) -> None:
    from campaign.cli import _parser

    exposed = {p for value in values(stages(dockerfile)[-1], "EXPOSE") for p in value.split()}
    simulate_port = _parser().parse_args(["simulate"]).port
    assert {str(ServiceConfig().port), str(simulate_port)} <= exposed


def test_no_secret_is_baked_into_the_image(dockerfile: DockerfileParser) -> None:
    named = set(dockerfile.envs) | {
        value.split("=")[0] for stage in stages(dockerfile) for value in values(stage, "ARG")
    }
    assert not {name for name in named if SECRET_NAME.search(name)}


def dockerignored(path: str) -> bool:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    parts = Path(path).parts
    candidates = {"/".join(parts[: i + 1]) for i in range(len(parts))}
    for pattern in patterns:
        bare = pattern.removeprefix("**/")
        if any(fnmatch.fnmatch(c, pattern) or fnmatch.fnmatch(Path(c).name, bare) for c in candidates):
            return True
    return False


def test_the_dockerignore_keeps_local_state_and_env_files_out_but_not_the_sources(
    dockerfile: DockerfileParser,
) -> None:
    for kept_out in (".venv/bin/python", ".git/HEAD", "ops/deploy/.env", "tests/conftest.py"):
        assert dockerignored(kept_out), kept_out
    build = stages(dockerfile)[0]
    for value in values(build, "COPY"):
        for source in value.split()[:-1]:
            assert not dockerignored(source), source


def test_the_build_stages_sources_build_the_projects_wheel_offline(
    dockerfile: DockerfileParser, tmp_path: Path
) -> None:
    """The files the Dockerfile copies (less what .dockerignore keeps out) are all `pip install .` needs:
    built here without an index, the wheel has the console script and the Lua and data files."""
    context = tmp_path / "src"
    for value in values(stages(dockerfile)[0], "COPY"):
        *sources, _ = value.split()
        for source in sources:
            origin, target = REPO / source, context / source
            if origin.is_dir():
                shutil.copytree(
                    origin, target, ignore=lambda d, names: [n for n in names if dockerignored(n)]
                )
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target)
    wheels = tmp_path / "wheels"
    offline = ["--no-deps", "--no-build-isolation", "--no-index"]
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", *offline, "--wheel-dir", str(wheels), str(context)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(archive.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert wheel.name.startswith(PYPROJECT["project"]["name"].replace("-", "_") + "-")
    assert "campaign = campaign.cli:main" in entry_points
    lua = {str(p.relative_to(REPO)) for p in (REPO / "redis_model" / "lua").rglob("*.lua")}
    assert lua <= names
    assert {"ops/redis.conf", "campaign/cli.py", "worker/entrypoint.py"} <= names
    assert not any(name.startswith("tests/") for name in names)
