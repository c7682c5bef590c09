"""The compose file's health checks run as Docker would run them, against the real `campaign serve` and
`campaign simulate` started with the compose file's own command lines (on a free port): each fails
while nothing answers and passes once the process serves."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from ops.services import free_port, wait_until
from tests.conftest import API_KEY, Backend
from tests.unit.deploy.files import COMPOSE, option

SERVICES = yaml.safe_load(COMPOSE.read_text())["services"]


def healthcheck(service: str, port: int) -> subprocess.CompletedProcess[str]:
    """The service's `healthcheck.test`, its port changed to `port`, run with this interpreter."""
    test = SERVICES[service]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"], test
    listened = option(SERVICES[service]["command"], "--port")
    arguments = [part.replace(f":{listened}/", f":{port}/") for part in test[2:]]
    return subprocess.run([sys.executable, *arguments], capture_output=True, text=True, timeout=30)


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def run_service(
    service: str, port: int, env: dict[str, str], log: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    command = list(SERVICES[service]["command"])
    command[command.index("--port") + 1] = str(port)
    with log.open("ab") as out:
        started.append(
            subprocess.Popen(
                [sys.executable, "-m", "campaign", *command],
                env=os.environ | env,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        )


@pytest.mark.redis
def test_serves_health_check_passes_once_it_serves_on_redis(
    real_redis: Backend, tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    port = free_port()
    assert healthcheck("serve", port).returncode != 0
    assert real_redis.url is not None
    run_service("serve", port, {"REDIS_URL": real_redis.url}, tmp_path / "serve.log", started)
    wait_until(lambda: healthcheck("serve", port).returncode == 0, 60, "campaign serve's /readyz")
    assert started[0].poll() is None


def test_the_simulators_health_check_passes_once_it_serves(
    tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    port = free_port()
    assert healthcheck("simulator", port).returncode != 0
    run_service("simulator", port, {"KALEYRA_API_KEY": API_KEY}, tmp_path / "simulator.log", started)
    wait_until(lambda: healthcheck("simulator", port).returncode == 0, 60, "campaign simulate")
