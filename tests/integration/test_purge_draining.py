"""A campaign purged (`--force`) while its workers still drain its jobs stays gone: no worker path
writes to a campaign whose hash no longer exists, so nothing of it comes back without an expiry; and a
purge removes its requests' delivery keys too."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from ops.simulator import SimulatorConfig, start_in_thread
from ops.simulator.delivery import ReportsConfig
from producer.control import campaign_status, cancel, purge
from producer.publish import publish_campaign
from producer.spec import build_spec
from redis_model import keys
from redis_model.delivery import request_ids
from redis_model.ledger import ChunkLedger, Claim
from redis_model.outcomes import chunk_outcomes
from redis_model.sending_state import CampaignStore
from schemas.campaign import ChunkOutcome, Outcome
from schemas.errors import AccountFault, PermanentGatewayError, TransientGatewayError
from worker.broker import build_broker

API_KEY = "test-key-0123456789abcdef"
RETENTION_S = 3600
RECIPIENTS = 20


def publish(backend, settings) -> str:
    spec = build_spec(settings=settings, sender="KLRHXA", type="MKT", body="Hi", prefix="+91")
    rows = [(line, f"90000{line:05d}") for line in range(2, RECIPIENTS + 2)]
    publish_campaign(spec, rows, client=backend.client, broker=build_broker(settings, backend.client),
                     settings=settings)  # fmt: skip
    return spec.campaign_id


def left_of(client, campaign_id: str) -> list[str]:
    """Every key of the campaign still in Redis: its known keys, and any key naming it (SCAN)."""
    known = [key for key in keys.all_keys(campaign_id) if client.exists(key)]
    scanned = [key.decode() for key in client.scan_iter(match=f"*{campaign_id}*", count=1000)]
    return sorted({*known, *scanned})


@pytest.mark.redis
@pytest.mark.parametrize("backend", ["redis"], indirect=True)
def test_a_campaign_purged_while_workers_drain_it_leaves_no_key(backend, start_worker, make_settings, caplog):
    """The gateway pushes back on every request (E403): workers keep retrying their chunks (counting each
    retry in the campaign) while the campaign is cancelled and purged; then they find it gone."""
    caplog.set_level(logging.WARNING)
    pushing_back = SimulatorConfig(api_key=API_KEY, e403_rate=1.0, latency_ms=100, seed=1)
    with start_in_thread(pushing_back) as simulator:
        settings = make_settings(simulator.base_url, retention_s=RETENTION_S, chunk_size=2, job_size=2,
                                 retry_attempts=50, job_max_retries=0)  # fmt: skip
        campaign_id = publish(backend, settings)
        broker = start_worker(settings, threads=2)
        deadline = time.monotonic() + 30
        while campaign_status(backend.client, campaign_id).retried < 2:  # chunks in flight, jobs queued
            assert time.monotonic() < deadline, "no worker retried a chunk"
            time.sleep(0.01)

        cancel(backend.client, campaign_id, retention_s=RETENTION_S)
        assert purge(backend.client, campaign_id, force=True) == "cancelled"
        broker.join(keys.BULK_LANE.queue, timeout=60_000)  # queued, delayed and in-flight messages all done

    assert left_of(backend.client, campaign_id) == []
    assert backend.client.zscore(keys.CAMPAIGNS_BY_CREATION, campaign_id) is None
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def _count_retry(store: CampaignStore, ledger: ChunkLedger, campaign_id: str) -> None:
    await store.count_retry(campaign_id, TransientGatewayError("E403", "slow down"))


async def _note_error(store: CampaignStore, ledger: ChunkLedger, campaign_id: str) -> None:
    await store.note_error(campaign_id, PermanentGatewayError("E413", "refused"))


async def _mark_waiting(store: CampaignStore, ledger: ChunkLedger, campaign_id: str) -> None:
    await store.mark_waiting(campaign_id, 0, time.time() + 60, 2)


async def _hold_account(store: CampaignStore, ledger: ChunkLedger, campaign_id: str) -> None:
    await store.hold_account(campaign_id, AccountFault("UNAUTHORIZED", "refused"))
    await store.lift_hold()


async def _begin_and_expire(store: CampaignStore, ledger: ChunkLedger, campaign_id: str) -> None:
    assert await store.begin_job(campaign_id, 0) is None
    assert not await store.expire(campaign_id)


async def _claim_settle_release(store: CampaignStore, ledger: ChunkLedger, campaign_id: str) -> None:
    assert await ledger.claim(campaign_id, 0, "w1", 2, 2, "hold", while_running=True) == (Claim.SETTLED, 2)
    assert await ledger.claim(campaign_id, 0, "w1", 0, 2, "resend") == (Claim.SETTLED, 0)
    assert not await ledger.settle(campaign_id, 0, "w1", 0, ChunkOutcome(outcome=Outcome.CANCELLED, size=2))
    assert not await ledger.release(campaign_id, 0, "w1")


@pytest.mark.parametrize(
    "write",
    [_count_retry, _note_error, _mark_waiting, _hold_account, _begin_and_expire, _claim_settle_release],
    ids=lambda write: write.__name__.strip("_"),
)
def test_a_worker_write_after_the_purge_recreates_nothing(backend, make_settings, write):
    """Each write a worker may make mid-job, made once the campaign was purged, writes nothing of it; a
    claim tells the run where it stands (its own offset: the job ends there as orphaned)."""
    settings = make_settings("http://127.0.0.1:9", retention_s=RETENTION_S)
    campaign_id = publish(backend, settings)
    cancel(backend.client, campaign_id, retention_s=RETENTION_S)
    purge(backend.client, campaign_id, force=True)

    async def as_a_worker() -> None:
        async with backend.async_factory() as client:
            ledger = ChunkLedger(client, lease_ms=10_000, retention_s=RETENTION_S)
            await write(CampaignStore(client, settings), ledger, campaign_id)

    asyncio.run(as_a_worker())

    assert left_of(backend.client, campaign_id) == []


def test_a_job_waiting_for_its_window_in_a_cancelled_campaign_expires_with_it(backend, make_settings):
    settings = make_settings("http://127.0.0.1:9", retention_s=RETENTION_S)
    campaign_id = publish(backend, settings)
    cancel(backend.client, campaign_id, retention_s=RETENTION_S)

    async def mark_waiting() -> None:
        async with backend.async_factory() as client:
            await CampaignStore(client, settings).mark_waiting(campaign_id, 0, time.time() + 60, 2)

    asyncio.run(mark_waiting())

    assert backend.client.hlen(keys.waiting(campaign_id)) == 1
    assert RETENTION_S - 60 < backend.client.ttl(keys.waiting(campaign_id)) <= RETENTION_S


def test_errors_and_retries_are_still_shown_for_a_campaign_there(backend, make_settings):
    settings = make_settings("http://127.0.0.1:9", retention_s=RETENTION_S)
    campaign_id = publish(backend, settings)

    async def note() -> None:
        async with backend.async_factory() as client:
            store = CampaignStore(client, settings)
            await store.count_retry(campaign_id, TransientGatewayError("E403", "slow down"))
            await store.note_error(campaign_id, PermanentGatewayError("E413", "refused"))
            await store.mark_waiting(campaign_id, 0, time.time() + 60, 2)

    asyncio.run(note())

    status = campaign_status(backend.client, campaign_id)
    assert (status.retried, status.last_error, status.waiting_for_window) == (1, "E413: refused", 2)
    assert backend.client.ttl(keys.waiting(campaign_id)) == -1  # nothing of a campaign not finished expires


def test_purge_removes_the_campaigns_delivery_keys_and_leaves_other_campaigns(
    backend, start_worker, make_settings
):
    """Its requests' delivery strings (whose headers name it), early reports and places in the indexes of
    reconciliation and early reports, and its place among the campaigns whose end is to be told."""
    reports = ReportsConfig(url=None, median_delay_ms=5, delay_sigma=0.5, seed=11)
    with start_in_thread(SimulatorConfig(api_key=API_KEY, seed=3, reports=reports)) as simulator:
        settings = make_settings(
            simulator.base_url, chunk_size=5, retention_s=RETENTION_S, dlr_poll_after_s=3600
        )
        broker = start_worker(settings)
        purged, kept = publish(backend, settings), publish(backend, settings)
        for campaign_id in (purged, kept):
            wait_for(lambda: campaign_status(backend.client, campaign_id).pending == 0)  # noqa: B023
    requests = {campaign_id: requests_of(backend.client, campaign_id) for campaign_id in (purged, kept)}
    assert len(requests[purged]) == RECIPIENTS // 5 and set(requests[purged]).isdisjoint(requests[kept])
    early = requests[purged][0]
    backend.client.hset(keys.early_reports(early), "0", b"a report that came early")
    backend.client.zadd(keys.EARLY_REPORTS, {keys.delivery(early): time.time()})
    backend.client.zadd(keys.CALLBACK_CAMPAIGNS, {purged: time.time(), kept: time.time()})
    broker.close()

    assert purge(backend.client, purged) == "completed"

    client = backend.client
    assert not any(
        client.exists(keys.delivery(request), keys.early_reports(request)) for request in requests[purged]
    )
    assert all(client.exists(keys.delivery(request)) for request in requests[kept])
    assert set(member.decode() for member in client.zrange(keys.UNREPORTED, 0, -1)) == set(requests[kept])
    assert client.zcard(keys.EARLY_REPORTS) == 0
    assert [member.decode() for member in client.zrange(keys.CALLBACK_CAMPAIGNS, 0, -1)] == [kept]
    assert left_of(client, purged) == []


def requests_of(client, campaign_id: str) -> list[str]:
    return [
        request
        for _, outcome in chunk_outcomes(client, campaign_id)
        for request in request_ids(outcome.full_message_ids())
    ]


def wait_for(condition, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
