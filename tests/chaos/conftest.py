"""Chaos fixtures: a redis-server of our own (AOF on) that a test may kill, real `campaign worker`
processes that never outlive their test, and the table of trial figures printed at the end.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence

import pytest
import redis

from ops.services import RedisServer, free_port
from tests.chaos.harness import CI, kill9


@pytest.fixture
def redis_server(tmp_path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        if CI:
            raise RuntimeError("CI=true needs redis-server on the PATH for the chaos tests")
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path, free_port())
    server.start()
    yield server
    if server.process and server.process.poll() is None:
        server.kill()


@pytest.fixture
def redis_client(redis_server) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


@pytest.fixture
def workers(tmp_path) -> Iterator[Callable[..., subprocess.Popen]]:
    """Factory: start a `campaign worker` process group; whatever happens, none outlives the test."""
    started: list[subprocess.Popen] = []

    def start(
        env: Mapping[str, str], *, threads: int = 2, name: str | None = None, within: Sequence[str] = ()
    ) -> subprocess.Popen:
        """`within`: a command that execs the worker, such as `ip netns exec NS` (a host of its own)."""
        name = name or f"worker{len(started)}"
        # Events to NAME.jsonl, dramatiq's own log to NAME.log: both in the test's tmp_path.
        with open(tmp_path / f"{name}.jsonl", "ab") as events, open(tmp_path / f"{name}.log", "ab") as log:
            process = subprocess.Popen(
                [*within, sys.executable, "-m", "campaign", "worker", "--processes", "1",
                 "--threads", str(threads)],
                env=dict(env), stdout=events, stderr=log, start_new_session=True,
            )  # fmt: skip
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


_TRIALS: list[dict[str, object]] = []


# `campaign serve`'s processes in the chaos tests: kill -9 must reach the parent and each it spawned.
SERVE_PROCESSES = 2


@pytest.fixture
def serve(tmp_path) -> Iterator[Callable[[Mapping[str, str], int], subprocess.Popen]]:
    """Factory: `campaign serve` on `port` in a process group of its own; none outlives the test."""
    started: list[subprocess.Popen] = []

    def start(env: Mapping[str, str], port: int) -> subprocess.Popen:
        with open(tmp_path / f"serve{len(started)}.log", "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "campaign", "serve", "--port", str(port),
                 "--processes", str(SERVE_PROCESSES)],
                env=dict(env), stdout=log, stderr=log, start_new_session=True,
            )  # fmt: skip
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            kill9(process)


@pytest.fixture
def report_trial() -> Callable[..., None]:
    """Record one trial's figures; the session ends with a table of them (`pytest_terminal_summary`)."""
    return lambda **figures: _TRIALS.append(figures)


def pytest_terminal_summary(terminalreporter) -> None:
    if not _TRIALS:
        return
    terminalreporter.section("chaos trials")
    columns = list(dict.fromkeys(name for trial in _TRIALS for name in trial))
    rows = [[_cell(trial.get(name, "")) for name in columns] for trial in _TRIALS]
    widths = [max(len(cell) for cell in column) for column in zip(columns, *rows, strict=True)]
    for row in [columns, *rows]:
        terminalreporter.write_line(
            "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
        )


def _cell(value: object) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value)
