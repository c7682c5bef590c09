"""Pause, resume, cancel and expiry across two real `campaign worker` processes (2 threads each).

Every command lands while chunks are in flight on both workers; each thread may finish the chunk it
holds, so at most WORKERS x THREADS x CHUNK messages are accepted after the command, and never more.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest
import redis

from ops.simulator import RunningSimulator, SimulatorConfig, start_in_thread
from producer.control import CampaignStatus, campaign_status, cancel, pause, resume
from producer.publish import publish_campaign
from producer.spec import build_spec
from redis_model import keys
from schemas.settings import Settings
from tests.chaos.harness import API_KEY, check_invariants, wait_finished, wait_for, worker_env
from worker.broker import build_broker
from worker.stops import ComeBackLater

RETENTION_S = 3600  # how long a finished campaign stays in Redis

pytestmark = pytest.mark.redis

TOTAL, JOB_SIZE, CHUNK, WORKERS, THREADS, LATENCY_MS = 5000, 500, 50, 2, 2, 100
IN_FLIGHT = WORKERS * THREADS * CHUNK  # at most one chunk per worker thread is mid-send at a command
EXPECTED = {f"+9190000{i:05d}" for i in range(TOTAL)}


@dataclass
class Rig:
    """The simulator, two worker processes (each logging to its own file) and the producer's side."""

    client: redis.Redis
    simulator: RunningSimulator
    settings: Settings
    logs: list[Path]

    def publish(self, **options: str) -> str:
        spec = build_spec(
            settings=self.settings, sender="KLRHXA", type="MKT", body="Hi", prefix="+91", **options
        )
        rows = [(i + 2, f"90000{i:05d}") for i in range(TOTAL)]
        broker = build_broker(self.settings, self.client)
        publish_campaign(spec, rows, client=self.client, broker=broker, settings=self.settings)
        return spec.campaign_id

    def status(self, campaign_id: str) -> CampaignStatus:
        return campaign_status(self.client, campaign_id)

    def accepted(self) -> int:
        return len(self.simulator.record.messages)

    def submitted_events(self) -> list[list[dict]]:
        """Each worker's `sms.submitted` events (a line still being written is left for later)."""
        return [
            [
                e
                for line in path.read_bytes().splitlines()
                if (e := _event(line)).get("event") == "sms.submitted"
            ]
            for path in self.logs
        ]

    def when_both_workers_send(self, campaign_id: str, command) -> int:
        """Run `command` once every worker has had messages accepted; the gateway's count just after it."""
        wait_for(lambda: all(self.submitted_events()), timeout=60)
        assert self.status(campaign_id).pending > 0, "the campaign finished before the command"
        command(self.client, campaign_id, retention_s=RETENTION_S)
        return self.accepted()

    def finished(self, campaign_id: str) -> CampaignStatus:
        """Until nothing is pending; then the harness's invariants (no worker died: nothing held unknown)."""
        wait_finished(self.client, campaign_id)
        return check_invariants(
            self.client, campaign_id, self.simulator, EXPECTED, policy="hold", in_flight=0
        ).status

    def settled(self, campaign_id: str) -> CampaignStatus:
        """Until no chunk is claimed and the gateway accepted exactly what status counts submitted."""
        return wait_for(
            lambda: (
                not self.client.hlen(keys.claims(campaign_id))
                and (s := self.status(campaign_id)).submitted == self.accepted()
                and s
            ),
            timeout=60,
        )


def _event(line: bytes) -> dict:
    try:
        return msgspec.json.decode(line)
    except msgspec.DecodeError:
        return {}


@pytest.fixture
def rig(redis_server, redis_client, make_settings, workers, tmp_path) -> Iterator[Rig]:
    with start_in_thread(SimulatorConfig(api_key=API_KEY, latency_ms=LATENCY_MS, seed=7)) as simulator:
        env = worker_env(redis_server.url, simulator.base_url, chunk_size=CHUNK)
        started = [workers(env, threads=THREADS, name=f"worker{i}") for i in range(WORKERS)]
        # dramatiq's heartbeat set: each worker process enters it at its first fetch from the queue.
        wait_for(lambda: redis_client.zcard(keys.DRAMATIQ_HEARTBEATS) >= WORKERS, timeout=60)
        settings = make_settings(simulator.base_url, chunk_size=CHUNK, job_size=JOB_SIZE)
        yield Rig(redis_client, simulator, settings, [tmp_path / f"worker{i}.jsonl" for i in range(WORKERS)])
        for process in started:
            process.send_signal(signal.SIGTERM)  # as an operator would; the fixture SIGKILLs stragglers
        for process in started:
            process.wait(timeout=30)


def test_pause_takes_effect_within_one_chunk_on_every_worker(rig):
    campaign_id = rig.publish()
    after_pause = rig.when_both_workers_send(campaign_id, pause)

    held = rig.settled(campaign_id)
    time.sleep(1.5 * ComeBackLater.delay_ms / 1000)  # the paused jobs come back from the queue, and go again

    assert rig.status(campaign_id) == held
    assert held.state == "paused"
    assert 0 < held.submitted < TOTAL
    assert rig.accepted() == held.submitted
    assert rig.accepted() - after_pause <= IN_FLIGHT
    logged = rig.submitted_events()
    assert all(logged), "a worker sent nothing"
    assert sorted(e["message_id"] for events in logged for e in events) == sorted(
        m.message_id for m in rig.simulator.record.messages
    )


def test_resume_continues_where_the_campaign_stopped_not_from_the_start(rig):
    campaign_id = rig.publish()
    rig.when_both_workers_send(campaign_id, pause)
    held = rig.settled(campaign_id)

    resume(rig.client, campaign_id, retention_s=RETENTION_S)
    status = rig.finished(campaign_id)

    assert 0 < held.submitted < TOTAL
    assert status.state == "completed"
    assert (status.submitted, rig.accepted()) == (TOTAL, TOTAL)
    assert rig.simulator.record.counts_by_number() == dict.fromkeys(EXPECTED, 1)


def test_cancel_counts_the_rest_cancelled_and_sends_nothing_after_the_chunks_in_flight(rig):
    campaign_id = rig.publish()
    after_cancel = rig.when_both_workers_send(campaign_id, cancel)

    status = rig.finished(campaign_id)

    assert status.state == "cancelled"
    assert status.cancelled > 0 and status.submitted + status.cancelled == TOTAL
    assert rig.accepted() == status.submitted
    assert rig.accepted() - after_cancel <= IN_FLIGHT


def test_past_its_expiry_the_rest_is_cancelled_not_sent_late_by_any_worker(rig):
    """The campaign needs > 2.5 s at full speed (chunks / threads x latency); it expires after 2 s."""
    campaign_id = rig.publish(expires_in="2s")

    status = rig.finished(campaign_id)

    assert status.state == "cancelled"
    assert status.cancelled > 0 and status.submitted + status.cancelled == TOTAL
    assert rig.accepted() == status.submitted
    # Workers check the expiry before each chunk: past it, only chunks already in flight may land.
    expires_at = status.expires_at
    assert expires_at is not None
    late = [e for events in rig.submitted_events() for e in events if e["ts"] > expires_at]
    assert len(late) <= IN_FLIGHT
