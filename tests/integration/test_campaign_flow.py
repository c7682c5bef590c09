"""The main path end to end, on fakeredis and on a real Redis: publish -> dramatiq workers -> simulator."""

from __future__ import annotations

import logging
import random
import time

import dramatiq
import msgspec
import pytest

from ops.simulator import SimulatorConfig, start_in_thread
from producer.control import campaign_status, cancel, pause, resume
from producer.publish import publish_campaign
from producer.recipients import open_recipients
from producer.spec import build_spec
from redis_model import keys
from redis_model.outcomes import chunk_outcomes
from schemas.errors import SpecError
from worker.broker import build_broker, register_actors
from worker.context import WorkerContext

RETENTION_S = 3600  # how long a finished campaign stays in Redis

API_KEY = "test-key-0123456789abcdef"
FORMATS = (
    lambda n: f"+91{n}",
    lambda n: f"0091{n}",
    lambda n: f"91{n}",
    lambda n: f"0{n}",
    lambda n: n,
    lambda n: f"+91 {n[:5]} {n[5:]}",
    lambda n: f"({n[:3]}) {n[3:6]}-{n[6:]}",
    lambda n: f"{n[:3]}.{n[3:6]}.{n[6:]}",
)
INVALID = ("98765x4321", "", "+999 123 4567", "12345", "+91 98765 43210 99", "call me")


def write_recipients(path, distinct: int, duplicates: int, invalid: int) -> set[str]:
    """A CSV in mixed formats; returns the E.164 numbers that must each be sent exactly once."""
    rng = random.Random(3)
    nationals = [f"9{i:09d}" for i in range(distinct)]
    rows = [rng.choice(FORMATS)(n) for n in nationals]
    rows += [rng.choice(FORMATS)(rng.choice(nationals)) for _ in range(duplicates)]
    rows += [INVALID[i % len(INVALID)] for i in range(invalid)]
    rng.shuffle(rows)
    path.write_text("name,to\n" + "".join(f"r{i},{row}\n" for i, row in enumerate(rows)))
    return {f"+91{n}" for n in nationals}


def wait_for(condition, *, timeout: float = 60.0):
    """Poll until `condition()` is truthy; the timeout only keeps a broken run from hanging."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, "timed out waiting for the campaign"
        time.sleep(0.05)
    return result


def publish_numbers(backend, broker, settings, count: int, **options):
    """Publish an MKT campaign to `count` numbers (+919000000000 on); returns its spec."""
    spec = build_spec(settings=settings, sender="KLRHXA", type="MKT", body="Hi", prefix="+91", **options)
    rows = [(i + 2, f"90000{i:05d}") for i in range(count)]
    publish_campaign(spec, rows, client=backend.client, broker=broker, settings=settings)
    return spec


def wait_completed(backend, campaign_id: str):
    return wait_for(lambda: (s := campaign_status(backend.client, campaign_id)).state == "completed" and s)


def events_of(path) -> list[dict]:
    return [msgspec.json.decode(line) for line in path.read_bytes().splitlines()]


def test_every_valid_distinct_recipient_is_accepted_exactly_once(
    backend, start_worker, make_settings, tmp_path, event_log
):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, e403_rate=0.25, seed=4)) as simulator:
        settings = make_settings(simulator.base_url)
        broker = start_worker(settings)
        expected = write_recipients(tmp_path / "r.csv", distinct=3000, duplicates=200, invalid=60)
        spec = build_spec(settings=settings, sender="KLRHXA", type="MKT", body="Hello there", prefix="+91")

        with open_recipients(str(tmp_path / "r.csv")) as rows:
            result = publish_campaign(spec, rows, client=backend.client, broker=broker, settings=settings)
        status = wait_completed(backend, spec.campaign_id)

        record = simulator.record
        assert (result.total, result.invalid, result.duplicates) == (3000, 60, 200)
        assert (status.total, status.submitted, status.failed, status.unknown, status.pending) == (
            3000,
            3000,
            0,
            0,
            0,
        )
        assert (status.invalid, status.duplicates) == (60, 200)
        assert record.counts_by_number() == {number: 1 for number in expected}
        assert record.max_nodes == 1000
        assert record.e403_injected > 0
        assert 0 < status.retried <= record.e403_injected

    issued = sorted(m.message_id for m in record.messages)
    # The ledger keeps each chunk's ids without the start they share (the request's id), and gives
    # them back whole.
    stored = [outcome for _, outcome in chunk_outcomes(backend.client, spec.campaign_id)]
    assert all(len(outcome.id_prefix) > 30 for outcome in stored)
    assert sorted(i for outcome in stored for i in outcome.full_message_ids()) == issued
    logged = [e for e in events_of(event_log) if e["event"] == "sms.submitted"]
    assert sorted(e["message_id"] for e in logged) == issued
    assert {e["campaign_id"] for e in logged} == {spec.campaign_id}
    assert all("*" in e["recipient"] and e["recipient"][-4:].isdigit() for e in logged)
    assert API_KEY not in event_log.read_text()


def test_otp_campaign_sends_its_one_recipient_in_a_one_node_request(
    backend, start_worker, make_settings, simulator
):
    settings = make_settings(simulator.base_url)
    broker = start_worker(settings)
    spec = build_spec(settings=settings, sender="KLRHXA", type="OTP", body="Your code is 4321")
    publish_campaign(
        spec,
        [(2, "+919000000001"), (3, "0091 90000 00001")],
        client=backend.client,
        broker=broker,
        settings=settings,
    )
    status = wait_completed(backend, spec.campaign_id)
    assert (status.total, status.submitted, status.duplicates) == (1, 1, 1)
    assert [m.to for m in simulator.record.messages] == ["+919000000001"]
    assert simulator.record.max_nodes == 1


def test_otp_campaign_of_two_recipients_is_refused_and_nothing_is_published(backend, make_settings):
    settings = make_settings("http://127.0.0.1:9")
    broker = build_broker(settings, backend.client)
    spec = build_spec(settings=settings, sender="KLRHXA", type="OTP", body="Your code is 4321")
    with pytest.raises(SpecError, match="OTP sends to exactly one recipient"):
        publish_campaign(
            spec,
            [(2, "+919000000001"), (3, "+919000000002")],
            client=backend.client,
            broker=broker,
            settings=settings,
        )
    assert backend.client.keys("*") == []


def test_cancel_stops_sending_and_counts_what_is_left(backend, start_worker, make_settings):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, latency_ms=30, seed=1)) as simulator:
        settings = make_settings(simulator.base_url, chunk_size=50)
        broker = start_worker(settings, threads=2)
        spec = publish_numbers(backend, broker, settings, 4000)
        wait_for(lambda: campaign_status(backend.client, spec.campaign_id).submitted > 0)
        cancel(backend.client, spec.campaign_id, retention_s=RETENTION_S)
        status = wait_for(lambda: (s := campaign_status(backend.client, spec.campaign_id)).pending == 0 and s)

        assert status.state == "cancelled"
        assert status.cancelled > 0
        assert status.submitted + status.cancelled == 4000
        assert len(simulator.record.messages) == status.submitted


def test_pause_holds_the_campaign_and_resume_continues_where_it_stopped(backend, start_worker, make_settings):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, latency_ms=30, seed=1)) as simulator:
        settings = make_settings(simulator.base_url, chunk_size=50)
        broker = start_worker(settings, threads=2)
        spec = publish_numbers(backend, broker, settings, 4000)
        wait_for(lambda: campaign_status(backend.client, spec.campaign_id).submitted > 0)
        pause(backend.client, spec.campaign_id, retention_s=RETENTION_S)

        # In-flight chunks settle; then nothing more is sent while paused.
        wait_for(lambda: _steady(lambda: len(simulator.record.messages)))
        held = campaign_status(backend.client, spec.campaign_id)
        assert held.state == "paused"
        assert 0 < held.submitted < 4000
        assert len(simulator.record.messages) == held.submitted

        resume(backend.client, spec.campaign_id, retention_s=RETENTION_S)
        status = wait_completed(backend, spec.campaign_id)
        assert status.submitted == 4000
        assert set(simulator.record.counts_by_number().values()) == {1}


def _steady(read, *, window: float = 0.5) -> bool:
    before = read()
    time.sleep(window)
    return read() == before


def test_a_job_out_of_retries_leaves_its_chunks_failed_with_the_last_code(
    backend, start_worker, make_settings, caplog
):
    """The gateway never recovers: tenacity gives up, dramatiq retries once, then the chunks are failed."""
    caplog.set_level(logging.INFO, logger="dramatiq")
    with start_in_thread(SimulatorConfig(api_key=API_KEY, e403_rate=1.0, seed=1)) as simulator:
        settings = make_settings(simulator.base_url, retry_attempts=2, job_max_retries=1, chunk_size=500)
        broker = start_worker(settings)
        spec = publish_numbers(backend, broker, settings, 1200)
        status = wait_for(
            lambda: (s := campaign_status(backend.client, spec.campaign_id)).state == "failed" and s
        )

        assert (status.submitted, status.failed, status.pending) == (0, 1200, 0)
        assert status.failures == {"E403": 1200}
        # 3 chunks x 2 tenacity attempts x 2 dramatiq attempts (the first one raises at its first chunk).
        assert simulator.record.e403_injected == 2 + 3 * 2
    # The job's retry is routine: a line at INFO, no traceback at ERROR.
    retried = [r for r in caplog.records if r.getMessage().startswith("Retrying message")]
    assert len(retried) == 1 and retried[0].levelno == logging.INFO
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("dramatiq")]


def test_a_stopping_worker_returns_its_jobs_after_the_chunk_in_flight(backend, make_settings):
    """Shutdown: chunks in flight finish, the rest goes back to the queue; a new worker resumes, no resend."""
    with start_in_thread(SimulatorConfig(api_key=API_KEY, latency_ms=50, seed=1)) as simulator:
        settings = make_settings(simulator.base_url, chunk_size=50)
        spec = build_spec(settings=settings, sender="KLRHXA", type="MKT", body="Hi", prefix="+91")
        rows = [(i + 2, f"90000{i:05d}") for i in range(3000)]

        first = _worker(backend, settings)
        publish_campaign(spec, rows, client=backend.client, broker=first.broker, settings=settings)
        wait_for(lambda: campaign_status(backend.client, spec.campaign_id).submitted > 0)
        first.stop()
        stopped = campaign_status(backend.client, spec.campaign_id)

        assert stopped.state == "running" and stopped.pending > 0
        assert backend.client.hgetall(keys.claims(spec.campaign_id)) == {}  # nothing left claimed
        assert len(simulator.record.messages) == stopped.submitted  # every chunk sent was settled

        second = _worker(backend, settings)
        try:
            status = wait_completed(backend, spec.campaign_id)
        finally:
            second.stop()
        assert (status.submitted, status.unknown) == (3000, 0)
        assert set(simulator.record.counts_by_number().values()) == {1}


def _worker(backend, settings) -> dramatiq.Worker:
    broker = build_broker(settings, backend.client)
    register_actors(broker, WorkerContext(settings, backend.async_factory))
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    return worker


def test_past_its_expiry_what_is_left_is_cancelled_not_sent_late(backend, start_worker, make_settings):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, latency_ms=50, seed=1)) as simulator:
        settings = make_settings(simulator.base_url, chunk_size=50)
        broker = start_worker(settings, threads=2)
        spec = publish_numbers(backend, broker, settings, 4000, expires_in="0.5s")
        status = wait_for(lambda: (s := campaign_status(backend.client, spec.campaign_id)).pending == 0 and s)

        assert status.state == "cancelled"
        assert status.cancelled > 0 and status.submitted + status.cancelled == 4000
        assert len(simulator.record.messages) == status.submitted
        last_accepted = (
            max(m.request_index for m in simulator.record.messages) if simulator.record.messages else -1
        )
        assert simulator.record.stats().requests == last_accepted + 1  # no request after the expiry's


def test_a_paused_campaign_past_its_expiry_is_cancelled_without_a_resume(
    backend, start_worker, make_settings
):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, latency_ms=30, seed=1)) as simulator:
        settings = make_settings(simulator.base_url, chunk_size=50)
        broker = start_worker(settings, threads=2)
        spec = publish_numbers(backend, broker, settings, 4000, expires_in="1s")
        wait_for(lambda: campaign_status(backend.client, spec.campaign_id).submitted > 0)
        pause(backend.client, spec.campaign_id, retention_s=RETENTION_S)
        status = wait_for(lambda: (s := campaign_status(backend.client, spec.campaign_id)).pending == 0 and s)

        assert status.state == "cancelled"
        assert status.cancelled > 0 and status.submitted + status.cancelled == 4000
        assert len(simulator.record.messages) == status.submitted


def test_a_chunk_is_not_held_claimed_during_a_retry_back_off(backend, start_worker, make_settings):
    """E403 sent nothing: while tenacity waits, the chunk is unclaimed, so a worker dying then leaves
    nothing unknown; the claim is taken again before the next attempt."""
    with start_in_thread(SimulatorConfig(api_key=API_KEY, e403_rate=1.0, seed=1)) as simulator:
        settings = make_settings(
            simulator.base_url,
            chunk_size=500,
            retry_attempts=50,
            retry_backoff_ms=200,
            retry_backoff_max_ms=400,
        )
        broker = start_worker(settings, threads=1)
        spec = publish_numbers(backend, broker, settings, 500)
        wait_for(lambda: campaign_status(backend.client, spec.campaign_id).retried >= 2)
        unclaimed = wait_for(lambda: backend.client.hlen(keys.claims(spec.campaign_id)) == 0, timeout=10)
        in_tenacity = campaign_status(backend.client, spec.campaign_id)

        simulator.set_faults(e403_rate=0.0)
        status = wait_completed(backend, spec.campaign_id)

    assert unclaimed and in_tenacity.pending == 500 and in_tenacity.retried < 50
    assert (status.submitted, status.unknown) == (500, 0)
    assert simulator.record.stats().accepted_messages == 500
