"""`campaign resend`: failed or unknown recipients published again, counted, and said to risk duplicates."""

from __future__ import annotations

import time

import msgspec
import pytest

from ops.simulator import SimulatorConfig, start_in_thread
from producer.control import campaign_status, cancel
from producer.publish import publish_campaign
from producer.resend import resend
from producer.spec import build_spec
from redis_model import keys
from redis_model.outcomes import chunk_outcomes
from schemas.campaign import Outcome
from schemas.errors import InputError, UnknownCampaignError
from worker.broker import build_broker

RETENTION_S = 3600  # how long a finished campaign stays in Redis

API_KEY = "test-key-0123456789abcdef"
TOTAL = 1200


def publish(backend, broker, settings):
    spec = build_spec(settings=settings, sender="KLRHXA", type="MKT", body="Hi", prefix="+91")
    rows = [(i + 2, f"90000{i:05d}") for i in range(TOTAL)]
    publish_campaign(spec, rows, client=backend.client, broker=broker, settings=settings)
    return spec.campaign_id


def wait_completed(backend, campaign_id: str, timeout: float = 60):
    """Until every recipient is settled: `completed`, or `failed` when every one of them failed."""
    deadline = time.monotonic() + timeout
    while (status := campaign_status(backend.client, campaign_id)).state not in ("completed", "failed"):
        assert time.monotonic() < deadline, f"timed out: {status}"
        time.sleep(0.05)
    return status


def test_failed_recipients_are_sent_again_and_the_counts_still_add_up(backend, start_worker, make_settings):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, e403_rate=1.0, seed=1)) as simulator:
        settings = make_settings(simulator.base_url, chunk_size=500, retry_attempts=1, job_max_retries=0)
        broker = start_worker(settings)
        cid = publish(backend, broker, settings)
        failed = wait_completed(backend, cid)
        assert (failed.state, failed.failed, failed.failures) == ("failed", TOTAL, {"E403": TOTAL})

        simulator.set_faults(e403_rate=0.0)
        result = resend(backend.client, broker, settings, cid, failed=True, unknown=False)
        status = wait_completed(backend, cid)

    assert (result.republished, result.failed, result.unknown, result.may_duplicate) == (TOTAL, TOTAL, 0, 0)
    assert (status.state, status.submitted, status.failed, status.unknown) == ("completed", TOTAL, 0, 0)
    assert (status.republished, status.failures) == (TOTAL, {})
    assert set(simulator.record.counts_by_number().values()) == {1}
    assert len(simulator.record.counts_by_number()) == TOTAL


def test_unknown_recipients_are_sent_again_and_reported_as_possible_duplicates(
    backend, start_worker, make_settings
):
    """Replies slower than the client's timeout: every chunk is unknown; resending them may duplicate."""
    with start_in_thread(SimulatorConfig(api_key=API_KEY, latency_ms=300, seed=1)) as simulator:
        settings = make_settings(simulator.base_url, chunk_size=500, http_timeout_s=0.1)
        broker = start_worker(settings)
        cid = publish(backend, broker, settings)
        unknown = wait_completed(backend, cid)
        assert (unknown.unknown, unknown.submitted) == (TOTAL, 0)

        simulator.set_faults(latency_ms=0)
        result = resend(backend.client, broker, settings, cid, failed=True, unknown=True)
        status = wait_completed(backend, cid)

    assert (result.republished, result.unknown, result.may_duplicate, result.jobs) == (TOTAL, TOTAL, TOTAL, 1)
    assert (status.submitted, status.unknown, status.republished) == (TOTAL, 0, TOTAL)
    sent = simulator.record.counts_by_number()
    assert len(sent) == TOTAL
    assert sum(n - 1 for n in sent.values()) <= result.may_duplicate


def test_a_chunk_is_republished_once_and_a_second_resend_finds_nothing(backend, start_worker, make_settings):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, e403_rate=1.0, seed=1)) as simulator:
        settings = make_settings(simulator.base_url, chunk_size=500, retry_attempts=1, job_max_retries=0)
        broker = start_worker(settings)
        cid = publish(backend, broker, settings)
        wait_completed(backend, cid)

        first = resend(backend.client, broker, settings, cid, failed=True, unknown=False)
        wait_completed(backend, cid)  # failed again: the gateway still answers E403
        marked = [outcome for _, outcome in chunk_outcomes(backend.client, cid) if outcome.republished]
        second = resend(backend.client, broker, settings, cid, failed=True, unknown=False)
        wait_completed(backend, cid)
        nothing = resend(backend.client, broker, settings, cid, failed=False, unknown=True)

    assert first.republished == second.republished == TOTAL
    assert sum(outcome.size for outcome in marked) == TOTAL
    assert all(outcome.outcome is Outcome.FAILED for outcome in marked)
    assert (nothing.republished, nothing.jobs) == (0, 0)
    status = campaign_status(backend.client, cid)
    assert (status.failed, status.republished, status.jobs) == (TOTAL, 2 * TOTAL, 3)


def test_resend_is_refused_with_a_reason(backend, make_settings):
    settings = make_settings("http://127.0.0.1:9")
    broker = build_broker(settings, backend.client)
    cid = publish(backend, broker, settings)

    with pytest.raises(InputError, match="--failed, --unknown"):
        resend(backend.client, broker, settings, cid, failed=False, unknown=False)
    with pytest.raises(UnknownCampaignError, match="nope"):
        resend(backend.client, broker, settings, "nope", failed=True, unknown=False)
    backend.client.set(keys.resend_lock(cid), "someone-else")
    with pytest.raises(InputError, match="another resend"):
        resend(backend.client, broker, settings, cid, failed=True, unknown=False)
    backend.client.delete(keys.resend_lock(cid))
    expired = build_spec(settings=settings, sender="KLRHXA", type="MKT", body="Hi", expires_in="1s")
    backend.client.hset(keys.campaign(cid), keys.SPEC, msgspec.json.encode(
        msgspec.structs.replace(expired, campaign_id=cid, expires_at=time.time() - 1)))  # fmt: skip
    with pytest.raises(InputError, match="expired at"):
        resend(backend.client, broker, settings, cid, failed=True, unknown=False)
    cancel(backend.client, cid, retention_s=RETENTION_S)
    with pytest.raises(InputError, match="cancelled"):
        resend(backend.client, broker, settings, cid, failed=True, unknown=False)
    assert backend.client.get(keys.resend_lock(cid)) is None  # a refusal leaves no lock behind


def test_resent_recipients_keep_their_jobs_time_zones(backend, start_worker, make_settings):
    from producer.timezones import zones_of
    from schemas.campaign import Job
    from tests.integration.test_scheduling import window_around_now

    with start_in_thread(SimulatorConfig(api_key=API_KEY, e403_rate=1.0, seed=1)) as simulator:
        settings = make_settings(simulator.base_url, retry_attempts=1, job_max_retries=0)
        broker = start_worker(settings)
        # India and Sri Lanka share an offset, so one window is open in both.
        spec = build_spec(settings=settings, sender="KLRHXA", type="MKT", body="Hi",
                          send_window=window_around_now("Asia/Kolkata"))  # fmt: skip
        numbers = [n for i in range(10) for n in (f"+9190000{i:05d}", f"+947712345{i:02d}")]
        publish_campaign(
            spec, list(enumerate(numbers, 2)), client=backend.client, broker=broker, settings=settings
        )
        wait_completed(backend, spec.campaign_id)

        simulator.set_faults(e403_rate=0.0)
        result = resend(backend.client, broker, settings, spec.campaign_id, failed=True, unknown=False)
        status = wait_completed(backend, spec.campaign_id)

    assert (result.jobs, status.submitted) == (2, 20)
    for index in (2, 3):  # the two original jobs are 0 and 1
        job = msgspec.msgpack.decode(backend.client.hget(keys.jobs(spec.campaign_id), str(index)), type=Job)
        assert {zones_of(r.to) for r in job.recipients} == {job.zones}
