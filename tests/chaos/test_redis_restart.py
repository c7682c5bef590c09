"""Redis is killed and restarted (AOF on) in the middle of a campaign; the worker rides it out."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import redis

from ops.simulator import SimulatorConfig, start_in_thread
from producer.control import campaign_status
from producer.publish import publish_campaign
from producer.spec import build_spec
from worker.broker import build_broker

pytestmark = pytest.mark.redis

API_KEY = "restart-key"
TOTAL, CHUNK = 3000, 100


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A redis-server of our own, with the project's AOF settings, that the test may kill."""

    def __init__(self, directory, port: int) -> None:
        self.directory, self.port = directory, port
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.directory), "--appendonly", "yes", "--appendfsync", "everysec",
             "--maxmemory-policy", "noeviction", "--save", ""],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        client.close()

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


@pytest.fixture
def redis_server(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path, free_port())
    server.start()
    yield server
    if server.process and server.process.poll() is None:
        server.kill()


def wait_for(condition, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if result := condition():
                return result
        except redis.ConnectionError:
            pass
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_redis_restart_mid_campaign_loses_and_duplicates_nothing(redis_server, make_settings, tmp_path):
    url = f"redis://127.0.0.1:{redis_server.port}/0"
    client = redis.Redis.from_url(url)
    with start_in_thread(SimulatorConfig(api_key=API_KEY, latency_ms=100, seed=2)) as simulator:
        env = os.environ | {
            "REDIS_URL": url,
            "KALEYRA_API_KEY": API_KEY,
            "KALEYRA_SID": "HXRESTART",
            "KALEYRA_BASE_URL": simulator.base_url,
            "CAMPAIGN_CHUNK_SIZE": str(CHUNK),
            "CAMPAIGN_JOB_MIN_BACKOFF_MS": "200",
        }
        settings = make_settings(simulator.base_url, chunk_size=CHUNK)
        spec = build_spec(settings=settings, sender="KLRHXA", type="MKT", body="Hi", prefix="+91")
        publish_campaign(spec, [(i + 2, f"90000{i:05d}") for i in range(TOTAL)], client=client,
                         broker=build_broker(settings, client), settings=settings)  # fmt: skip
        with open(tmp_path / "worker.jsonl", "wb") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "campaign", "worker", "--processes", "1", "--threads", "2"],
                env=env, stdout=log, stderr=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
            try:
                wait_for(lambda: campaign_status(client, spec.campaign_id).submitted >= 600, timeout=60)
                time.sleep(1.5)  # let the AOF's once-a-second fsync cover what was settled
                redis_server.kill()
                time.sleep(2)
                redis_server.start()
                status = wait_for(
                    lambda: (s := campaign_status(client, spec.campaign_id)).state == "completed" and s,
                    timeout=120,
                )
                assert worker.poll() is None, "the worker died with Redis"
            finally:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
    client.close()

    sent = simulator.record.counts_by_number()
    print(f"\n[restart] {status.submitted=} {status.unknown=} {status.failed=} "
          f"duplicates={sum(n - 1 for n in sent.values())}")  # fmt: skip
    assert status.pending == 0
    assert status.submitted + status.unknown + status.failed == TOTAL
    assert max(sent.values()) == 1  # hold: nothing sent twice
    assert TOTAL - len(sent) <= status.unknown  # nothing lost silently
