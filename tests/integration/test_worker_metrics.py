"""A real `campaign worker --processes 2 --metrics-port N` against the simulator (E403s on) and a real Redis:
one scrape of /metrics counts both processes, its counters equal the campaign's status, the queue gauge
follows what waits, and /healthz and /readyz answer as an orchestrator needs. The tests share one group
and run in the order written: the health test, last of them, kills one of its processes."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from campaign.cli import main
from ops.services import free_port
from ops.simulator import SimulatorConfig, start_in_thread
from producer import Campaigns, suppression
from schemas.settings import Settings
from tests.conftest import API_KEY, CI, TEST_REDIS_URL

pytestmark = pytest.mark.redis

SID = "HXMETRICS"
RECIPIENTS = 3000
SUPPRESSED = 7  # of them, suppressed after publishing: failed with SUPPRESSED as they come up
WAITING = ("ready", "delayed", "in_flight")


@dataclass
class Group:
    process: subprocess.Popen
    port: int
    campaigns: Campaigns
    campaign_id: str

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def scrape(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        """Every sample of /metrics by its name."""
        status, text = self.get("/metrics")
        assert status == 200
        samples: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in text_string_to_metric_families(text.decode()):
            for sample in family.samples:
                samples.setdefault(sample.name, []).append((sample.labels, sample.value))
        return samples


def total(samples, name: str, **labels: str) -> float:
    return sum(value for got, value in samples.get(name, []) if labels.items() <= got.items())


def waiting(samples) -> float:
    """What KEDA scales on: every queue's messages ready, delayed or in flight."""
    return sum(total(samples, "campaign_queue_messages", state=state) for state in WAITING)


def wait_for(condition, timeout: float = 60, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, f"timed out after {timeout}s"
        time.sleep(interval)
    return result


@pytest.fixture(scope="module")
def group(tmp_path_factory) -> Iterator[Group]:
    """The campaign published (some of its numbers then suppressed) before the group starts, so that
    both processes take its jobs; the group, the simulator and the Redis database stay for the module."""
    client = redis.Redis.from_url(TEST_REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as e:
        if CI:
            raise
        pytest.skip(f"no Redis at {TEST_REDIS_URL}: {e}")
    client.flushdb()
    simulator = start_in_thread(SimulatorConfig(api_key=API_KEY, e403_rate=0.2, seed=5))
    env = os.environ | {
        "REDIS_URL": TEST_REDIS_URL, "KALEYRA_API_KEY": API_KEY, "KALEYRA_SID": SID,
        "KALEYRA_BASE_URL": simulator.base_url, "CAMPAIGN_CHUNK_SIZE": "100", "CAMPAIGN_JOB_SIZE": "500",
        "CAMPAIGN_RETRY_BACKOFF_MS": "1", "CAMPAIGN_RETRY_BACKOFF_MAX_MS": "5",
        "CAMPAIGN_METRICS_CENSUS": "0",  # the campaigns walked at every scrape: no stale state to wait out
    }  # fmt: skip
    campaigns = Campaigns(client, Settings.from_environ(env))
    numbers = [f"+9198{n:08d}" for n in range(RECIPIENTS)]
    sent = campaigns.send_campaign(
        recipients=[{"to": number} for number in numbers], sender="KLRHXA", type="MKT", body="Sale today"
    )
    suppression.add(client, SID, numbers[-SUPPRESSED:], None)
    port = free_port()
    logs = tmp_path_factory.mktemp("worker")
    with open(logs / "events.jsonl", "wb") as events, open(logs / "worker.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "campaign", "worker", "--processes", "2", "--threads", "4",
             "--metrics-port", str(port)],
            env=env, stdout=events, stderr=log, start_new_session=True,
        )  # fmt: skip
    made = Group(process, port, campaigns, sent.campaign_id)
    try:
        wait_for(lambda: _answers(made), timeout=30)
        yield made
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        simulator.stop()
        client.flushdb()
        client.close()


def _answers(group: Group) -> bool:
    assert group.process.poll() is None, "the worker group exited"
    try:
        return group.get("/healthz")[0] == 200
    except OSError:
        return False


def finished(group: Group):
    status = group.campaigns.status(group.campaign_id)
    return status if status.pending == 0 and status.state == "completed" else None


def test_one_scrape_counts_both_processes_and_equals_the_campaigns_status(group):
    status = wait_for(lambda: finished(group))
    samples = group.scrape()
    assert total(samples, "campaign_worker_processes") == 2
    messages = dict(kind="campaign")
    assert total(samples, "campaign_messages_total", outcome="submitted", **messages) == status.submitted
    failed = Counter(
        {labels["code"]: value for labels, value in samples["campaign_messages_total"]
         if labels["outcome"] == "failed" and labels["kind"] == "campaign"}
    )  # fmt: skip
    assert failed == Counter(status.failures) == Counter(SUPPRESSED=SUPPRESSED)
    assert status.submitted == RECIPIENTS - SUPPRESSED
    # Every retry of the campaign's requests (E403s from the simulator), as status counts them.
    assert status.retried > 0
    assert total(samples, "campaign_gateway_retries_total") == status.retried
    assert total(samples, "campaign_gateway_retries_total", code="E403") == status.retried
    assert (
        total(samples, "campaign_gateway_requests_total", endpoint="sms_json", result="E403")
        >= status.retried
    )
    assert total(samples, "campaign_gateway_request_seconds_count", endpoint="sms_json") == total(
        samples, "campaign_gateway_requests_total", endpoint="sms_json"
    )
    # dramatiq's own middleware, in the same scrape: every job of the campaign ran (some more than once).
    assert total(samples, "dramatiq_messages_total", queue_name="campaigns") >= RECIPIENTS // 500
    assert "dramatiq_message_duration_milliseconds_bucket" in samples
    assert total(samples, "campaign_campaigns", state="completed") == 1
    assert samples["campaign_census_age_seconds"] == [({}, 0.0)]


def test_the_queue_gauge_is_zero_once_done_and_counts_a_paused_campaigns_jobs(group):
    wait_for(lambda: finished(group))
    wait_for(lambda: waiting(group.scrape()) == 0, timeout=30)
    at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    later = group.campaigns.send_campaign(
        recipients=[{"to": f"+9197{n:08d}"} for n in range(1000)], sender="KLRHXA", type="MKT",
        body="Later", at=at,
    )  # fmt: skip
    assert group.campaigns.pause(later.campaign_id) == "paused"
    samples = wait_for(lambda: _while_waiting(group.scrape()), timeout=30)
    assert total(samples, "campaign_campaigns", state="paused") == 1
    assert total(samples, "campaign_queue_messages", queue="campaigns", state="dead") == 0
    group.campaigns.cancel(later.campaign_id)


def _while_waiting(samples):
    return samples if waiting(samples) > 0 else None


def test_single_messages_are_counted_as_they_settle(group):
    sent = [
        group.campaigns.send_message(to=f"+9196{n:08d}", sender="KLRHXA", type="TXN", body="Order shipped")
        for n in range(5)
    ]
    wait_for(lambda: all(group.campaigns.message(one.id).status == "submitted" for one in sent))
    samples = group.scrape()
    assert total(samples, "campaign_messages_total", kind="single", outcome="submitted") == len(sent)
    assert total(samples, "campaign_messages_total", kind="single", outcome="failed") == 0


def test_readyz_says_redis_answers(group):
    assert group.get("/readyz") == (200, b'{"status":"ready"}')


def test_healthz_fails_once_a_worker_process_is_killed_and_the_group_cleans_up(group):
    status, body = group.get("/healthz")
    assert status == 200
    processes = json.loads(body)["processes"]
    assert len(processes) == 2
    (directory,) = [beat.parent for beat in Path(tempfile.gettempdir()).glob(
        f"campaign-worker-metrics-*/heartbeat_{processes[0]}")]  # fmt: skip
    os.kill(processes[0], signal.SIGKILL)
    wait_for(lambda: _unhealthy(group), timeout=30)
    group.process.wait(timeout=60)  # dramatiq stops the group when one of its processes dies
    assert not directory.exists()


def _unhealthy(group: Group) -> bool:
    """503 naming the dead process, or (once dramatiq stopped the group) no answer at all."""
    try:
        status, body = group.get("/healthz")
    except (OSError, http.client.HTTPException):  # refused, or cut off as the monitor stopped
        return True
    return status == 503 and b"unhealthy" in body


def test_a_metrics_port_in_use_is_refused_before_the_group_starts(monkeypatch, capsys):
    monkeypatch.setenv("KALEYRA_API_KEY", API_KEY)
    monkeypatch.setenv("KALEYRA_SID", SID)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["worker", "--processes", "1", "--metrics-port", str(port)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"campaign: refused: --metrics-port {port} cannot be used on 0.0.0.0: Address already in use"
    )
