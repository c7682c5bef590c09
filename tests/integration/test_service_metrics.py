"""`campaign serve`'s /metrics (its requests, the messages it queued, the delivery reports it received, the
Redis gauges), open without a key, and /readyz (and the worker monitor's) saying 503 once Redis is down."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from campaign.service.config import ServiceConfig
from campaign.service.dlr_config import DLR_PATH, DlrConfig
from ops.services import RedisServer, free_port, wait_until
from redis_model.api_keys import ApiKeyStore
from tests.conftest import TEST_REDIS_URL, Backend
from tests.integration.http_served import Served, serving
from worker.monitor import _Monitor

TOKEN = "dlr-token-for-metrics-0123"
ORDER = {"to": "+919812345678", "sender": "KLRHXA", "type": "TXN", "body": "Your order has shipped"}


def scrape(served: Served) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    answer = served.call("GET", "/metrics", key=None)
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.body.decode())
        for sample in family.samples
    }


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_count_requests_queued_messages_and_reports(backend, make_settings):
    """Counters are this test process's (shared by every test): compared before and after."""
    _, key = ApiKeyStore(backend.client).create("metrics")
    config = ServiceConfig(dlr=DlrConfig(token=TOKEN))
    with serving(backend, make_settings("http://127.0.0.1:9"), config) as served:
        served.key = key
        before = scrape(served)
        for _ in range(3):
            assert served.call("POST", "/v1/messages", json_body=ORDER).status == 202
        once = {"Idempotency-Key": "order-42"}
        assert served.call("POST", "/v1/messages", json_body=ORDER, headers=once).status == 202
        assert served.call("POST", "/v1/messages", json_body=ORDER, headers=once).status == 202  # a replay
        batch = {"messages": [ORDER, ORDER | {"type": "XYZ"}]}
        assert served.call("POST", "/v1/messages/batch", json_body=batch).body["queued"] == 1
        assert served.call("GET", "/v1/campaigns", key=None).status == 401
        reports = [
            {"id": "ee8a1b2c3d4e5f60718293a4b5c6d30d:1", "status": "Delivered"},  # its request not settled
            {"id": "not-a-kaleyra-id", "status": "Delivered"},
        ]
        headers = {"X-Dlr-Token": TOKEN}
        assert served.call("POST", DLR_PATH, json_body=reports, headers=headers, key=None).status == 200
        after = scrape(served)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("campaign_messages_queued_total", lane="txn") == 5
    assert grew("campaign_http_requests_total", route="/v1/messages", method="POST", status="202") == 5
    assert grew("campaign_http_requests_total", route="/v1/messages/batch", method="POST", status="202") == 1
    assert grew("campaign_http_requests_total", route="/v1/campaigns", method="GET", status="401") == 1
    assert grew("campaign_http_request_seconds_count", route="/v1/messages", method="POST") == 5
    assert grew("campaign_delivery_reports_total", verdict="early") == 1
    assert grew("campaign_delivery_reports_total", verdict="unmatched") == 1
    # Read from Redis at the scrape: the five messages wait on their lane, no worker runs.
    assert value(after, "campaign_queue_messages", queue="messages:txn", state="ready") == 5
    assert value(after, "campaign_redis_up") == 1


@pytest.mark.redis
def test_readyz_says_503_once_redis_is_down(tmp_path, make_settings):
    server = RedisServer(tmp_path)
    server.start()
    try:
        settings = make_settings("http://127.0.0.1:9", redis_url=server.url, sid="HXDOWN")
        backend = Backend(
            "redis", redis.Redis.from_url(server.url), lambda: aioredis.Redis.from_url(server.url), server.url
        )
        monitor = _Monitor(settings, parent=os.getppid())
        with serving(backend, settings) as served:
            assert served.call("GET", "/readyz", key=None).status == 200
            assert monitor.readyz()[0] == 200
            server.kill()
            answer = served.call("GET", "/readyz", key=None)
            assert answer.status == 503
            assert answer.body["error"]["code"] == "unavailable"
            assert "Redis cannot be reached" in answer.body["error"]["message"]
            samples = scrape(served)
            assert value(samples, "campaign_redis_up") == 0
            assert not any(name == "campaign_queue_messages" for name, _ in samples)
        status, kind, body = monitor.readyz()
        assert (status, kind) == (503, "application/json")
        assert b'"code":"unavailable"' in body and b"Redis cannot be reached" in body
    finally:
        server.kill()


def listening(port: int) -> int:
    """How many sockets listen on the port (each process of the service binds its own: SO_REUSEPORT)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(row.split()[1].endswith(f":{port:04X}") and row.split()[3] == "0A" for row in rows)


@pytest.mark.redis
def test_every_scrape_of_a_two_process_service_counts_both(real_redis, tmp_path):
    """`campaign serve --processes 2`: requests land on either process, and so does each scrape."""
    _, key = ApiKeyStore(real_redis.client).create("two")
    port = free_port()
    env = os.environ | {"REDIS_URL": TEST_REDIS_URL, "KALEYRA_SID": "HXTWO"}
    with open(tmp_path / "serve.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "campaign", "serve", "--port", str(port), "--processes", "2"],
            env=env, stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip
    served = Served("127.0.0.1", port, key)
    try:
        wait_until(lambda: listening(port) == 2, 30, "both processes of campaign serve")
        for _ in range(20):  # new connections: the kernel spreads them over both processes
            assert served.call("POST", "/v1/messages", json_body=ORDER).status == 202
        for _ in range(6):
            assert value(scrape(served), "campaign_messages_queued_total", lane="txn") == 20
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
