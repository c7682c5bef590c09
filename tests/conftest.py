"""Shared fixtures: Redis backends (fakeredis and a real server), the simulator, in-process workers.

Real-Redis tests skip on a laptop without Redis and fail under CI=true (dramatiq's habit).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dramatiq
import fakeredis
import pytest
import redis
import redis.asyncio as aioredis

from ops.simulator import SimulatorConfig, start_in_thread
from schemas.settings import Settings
from worker.broker import build_broker, register_actors
from worker.context import WorkerContext
from worker.logging import configure_logging

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
API_KEY = "test-key-0123456789abcdef"


@dataclass
class Backend:
    """A Redis to run against: the sync client (producer, broker) and a factory for the worker's async one."""

    name: str
    client: redis.Redis
    async_factory: Callable[[], aioredis.Redis]
    url: str | None


def _real_redis() -> Backend:
    client = redis.Redis.from_url(TEST_REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as e:
        client.close()
        if CI:
            raise RuntimeError(f"CI=true needs a Redis at {TEST_REDIS_URL}") from e
        pytest.skip(f"no Redis at {TEST_REDIS_URL}")
    client.flushdb()
    return Backend("redis", client, lambda: aioredis.Redis.from_url(TEST_REDIS_URL), TEST_REDIS_URL)


def _fake_redis() -> Backend:
    server = fakeredis.FakeServer()
    return Backend(
        "fakeredis",
        fakeredis.FakeRedis(server=server),
        lambda: fakeredis.aioredis.FakeRedis(server=server),
        None,
    )


@pytest.fixture(params=["fakeredis", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request) -> Iterator[Backend]:
    made = _real_redis() if request.param == "redis" else _fake_redis()
    yield made
    if made.name == "redis":
        made.client.flushdb()
    made.client.close()


@pytest.fixture
def real_redis() -> Iterator[Backend]:
    made = _real_redis()
    yield made
    made.client.flushdb()
    made.client.close()


@pytest.fixture(autouse=True)
def event_log(tmp_path) -> Iterator[Path]:
    """Every test's worker log goes to its own JSON-lines file (structlog's configuration is global)."""
    path = tmp_path / "events.jsonl"
    with open(path, "wb") as stream:
        configure_logging(stream)
        yield path
    configure_logging(sys.stdout.buffer)


@pytest.fixture
def simulator():
    with start_in_thread(SimulatorConfig(api_key=API_KEY, e403_rate=0.0, seed=1)) as running:
        yield running


@pytest.fixture
def make_settings() -> Callable[..., Settings]:
    """Factory: settings for `base_url`, with fast retries so tests spend no time sleeping."""
    return _settings


def _settings(base_url: str, **overrides) -> Settings:
    values = {
        "api_key": API_KEY,
        "sid": "HXTEST0000IN",
        "base_url": base_url,
        "retry_backoff_ms": 1,
        "retry_backoff_max_ms": 5,
        "job_min_backoff_ms": 10,
        "http_timeout_s": 5.0,
        # Tests count invalid rows in lists of a few rows, where one is past any share; the refusal
        # of a list mostly invalid (CAMPAIGN_MAX_INVALID) is tested on its own.
        "max_invalid": 1.0,
    }
    return Settings(**(values | overrides))


@pytest.fixture
def start_worker(backend: Backend):
    """Factory: a dramatiq broker on `backend` with a worker running in this process's threads."""
    started: list[dramatiq.Worker] = []

    def start(settings: Settings, *, threads: int = 4) -> dramatiq.Broker:
        broker = build_broker(settings, backend.client)
        register_actors(broker, WorkerContext(settings, backend.async_factory))
        worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
        worker.start()
        started.append(worker)
        return broker

    yield start
    for worker in started:
        worker.stop()
