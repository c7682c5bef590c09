"""Retention: a finished campaign's keys expire CAMPAIGN_RETENTION after it ends, an unfinished one's never;
`resend` keeps them again, `purge` removes them now, the index forgets the expired; listing by state."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from campaign.cli import main
from ops.simulator import SimulatorConfig, start_in_thread
from producer.api import Campaigns
from producer.control import campaign_status, cancel, pause, purge
from producer.publish import publish_campaign
from producer.resend import resend
from producer.spec import build_spec
from redis_model import campaign_index, keys
from redis_model.sending_state import CampaignStore
from schemas.errors import AccountFault, InputError, UnknownCampaignError
from worker.broker import build_broker

API_KEY = "test-key-0123456789abcdef"
RETENTION_S = 3600  # how long a finished campaign stays in Redis
ROWS = [(2, "9000000001"), (3, "9000000002"), (4, "not-a-number"), (5, "9000000001"), (6, "9000000003")]


def publish(backend, settings, **options) -> str:
    """A campaign of three recipients, an invalid row and a duplicate, published without a worker."""
    spec = build_spec(settings=settings, sender="KLRHXA", type="MKT", body="Hi", prefix="+91", **options)
    broker = build_broker(settings, backend.client)
    publish_campaign(spec, ROWS, client=backend.client, broker=broker, settings=settings)
    return spec.campaign_id


def ttls(backend, campaign_id: str) -> dict[str, int]:
    """Each existing key of the campaign's and its TTL (-1: none)."""
    found = {key: backend.client.ttl(key) for key in keys.all_keys(campaign_id)}
    return {key: ttl for key, ttl in found.items() if ttl != -2}


def assert_expiring(backend, campaign_id: str) -> None:
    found = ttls(backend, campaign_id)
    assert keys.campaign(campaign_id) in found and keys.invalid(campaign_id) in found
    assert all(RETENTION_S - 60 < ttl <= RETENTION_S for ttl in found.values()), found


def assert_kept(backend, campaign_id: str) -> None:
    found = ttls(backend, campaign_id)
    assert keys.campaign(campaign_id) in found and keys.jobs(campaign_id) in found
    assert set(found.values()) == {-1}, found


def wait_state(backend, campaign_id: str, *states: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while (status := campaign_status(backend.client, campaign_id)).state not in states or status.pending:
        assert time.monotonic() < deadline, f"timed out: {status}"
        time.sleep(0.05)
    return status


@pytest.mark.parametrize(("e403_rate", "ended"), [(0.0, "completed"), (1.0, "failed")])
def test_a_finished_campaign_expires_after_the_retention_on_every_key(
    backend, start_worker, make_settings, e403_rate, ended
):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, e403_rate=e403_rate, seed=1)) as simulator:
        settings = make_settings(
            simulator.base_url, retention_s=RETENTION_S, retry_attempts=1, job_max_retries=0
        )
        start_worker(settings)
        campaign_id = publish(backend, settings)
        wait_state(backend, campaign_id, ended)

    assert keys.outcomes(campaign_id) in ttls(backend, campaign_id)
    assert_expiring(backend, campaign_id)


def test_a_cancelled_campaign_expires_and_so_do_the_keys_its_workers_write_after(
    backend, start_worker, make_settings
):
    settings = make_settings("http://127.0.0.1:9", retention_s=RETENTION_S)
    campaign_id = publish(backend, settings)

    cancel(backend.client, campaign_id, retention_s=RETENTION_S)
    assert_expiring(backend, campaign_id)
    start_worker(settings)  # settles the pending recipients cancelled: progress and outcomes written
    wait_state(backend, campaign_id, "cancelled")

    assert keys.outcomes(campaign_id) in ttls(backend, campaign_id)
    assert_expiring(backend, campaign_id)


def test_a_campaign_cancelled_past_its_expiry_expires(backend, make_settings):
    settings = make_settings("http://127.0.0.1:9", retention_s=RETENTION_S)
    campaign_id = publish(backend, settings)

    async def expire() -> bool:
        async with backend.async_factory() as client:
            return await CampaignStore(client, settings).expire(campaign_id)

    assert asyncio.run(expire())
    assert_expiring(backend, campaign_id)


@pytest.mark.parametrize("state", ["queued", "scheduled", "paused", "running", "held"])
def test_a_campaign_not_finished_never_expires(backend, make_settings, state):
    settings = make_settings("http://127.0.0.1:9", retention_s=RETENTION_S)
    at = (datetime.now(UTC) + timedelta(hours=2)).isoformat() if state == "scheduled" else None
    campaign_id = publish(backend, settings, at=at)

    async def steer() -> None:
        async with backend.async_factory() as client:
            store = CampaignStore(client, settings)
            if state == "held":
                await store.hold_account(campaign_id, AccountFault("UNAUTHORIZED", "refused"))
            await store.begin_job(campaign_id, 0)

    if state == "paused":
        pause(backend.client, campaign_id, retention_s=RETENTION_S)
    elif state in ("running", "held"):
        asyncio.run(steer())

    assert campaign_status(backend.client, campaign_id).state == state
    assert_kept(backend, campaign_id)


def test_resend_keeps_a_finished_campaign_again_until_it_finishes_anew(backend, start_worker, make_settings):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, e403_rate=1.0, seed=1)) as simulator:
        settings = make_settings(
            simulator.base_url, retention_s=RETENTION_S, retry_attempts=1, job_max_retries=0
        )
        broker = start_worker(settings)
        campaign_id = publish(backend, settings)
        wait_state(backend, campaign_id, "failed")
        assert_expiring(backend, campaign_id)
        simulator.set_faults(e403_rate=0.0, latency_ms=1000)  # the resent chunk stays in flight a while

        resend(backend.client, broker, settings, campaign_id, failed=True, unknown=False)
        assert_kept(backend, campaign_id)
        wait_state(backend, campaign_id, "completed")

    assert_expiring(backend, campaign_id)


def test_purge_removes_every_key_and_the_index_entry_of_a_finished_campaign(backend, make_settings):
    settings = make_settings("http://127.0.0.1:9", retention_s=RETENTION_S)
    campaign_id = publish(backend, settings)
    backend.client.set(keys.resend_lock(campaign_id), "a resend that died")
    backend.client.hset(keys.campaign(campaign_id), mapping={keys.STATE: "completed", keys.CANCELLED: 3})

    assert purge(backend.client, campaign_id) == "completed"

    assert ttls(backend, campaign_id) == {}
    assert backend.client.zscore(keys.CAMPAIGNS_BY_CREATION, campaign_id) is None
    with pytest.raises(UnknownCampaignError, match=f"no campaign '{campaign_id}'"):
        purge(backend.client, campaign_id)


def test_purge_refuses_a_campaign_not_finished_and_a_cancelled_one_still_settling_unless_forced(
    backend, make_settings
):
    settings = make_settings("http://127.0.0.1:9", retention_s=RETENTION_S)
    campaign_id = publish(backend, settings)

    with pytest.raises(InputError, match="is queued; only a completed, failed or cancelled campaign"):
        purge(backend.client, campaign_id)
    cancel(backend.client, campaign_id, retention_s=RETENTION_S)
    with pytest.raises(InputError, match=r"cancelled with 3 recipients .* purge with --force"):
        purge(backend.client, campaign_id)
    assert_expiring(backend, campaign_id)

    assert purge(backend.client, campaign_id, force=True) == "cancelled"
    assert ttls(backend, campaign_id) == {}


def test_announcing_a_campaign_forgets_the_expired_ones_in_the_index(backend, make_settings):
    settings = make_settings("http://127.0.0.1:9", retention_s=RETENTION_S)
    old = time.time() - 2 * RETENTION_S
    long_paused = publish(backend, settings)
    backend.client.zadd(keys.CAMPAIGNS_BY_CREATION, {"expired" * 4: old, "gone" * 8: old, long_paused: old})

    latest = publish(backend, settings)

    listed = campaign_index.newest_campaign_ids(backend.client, 10)
    assert listed == [latest, long_paused]  # one created a retention ago that is still there stays


def test_campaigns_are_listed_by_state_newest_first_across_pages_of_the_index(
    backend, make_settings, monkeypatch
):
    monkeypatch.setattr(campaign_index, "_PAGE", 2)
    settings = make_settings("http://127.0.0.1:9", retention_s=RETENTION_S)
    made = []
    for _ in range(5):
        made.append(publish(backend, settings))
        time.sleep(0.01)  # created in that order
    for campaign_id in made[:3]:
        pause(backend.client, campaign_id, retention_s=RETENTION_S)
    campaigns = Campaigns(backend.client, settings)

    paused = campaigns.list_campaigns(state="paused", limit=2)
    queued = campaigns.list_campaigns(state="queued")

    assert [status.campaign_id for status in paused] == [made[2], made[1]]
    assert [status.campaign_id for status in queued] == [made[4], made[3]]
    assert campaigns.list_campaigns(state="failed") == []


@pytest.mark.redis
def test_campaign_purge_and_list_state_from_the_command_line(real_redis, make_settings, monkeypatch, capsys):
    monkeypatch.setenv("REDIS_URL", real_redis.url)
    settings = make_settings("http://127.0.0.1:9", retention_s=RETENTION_S)
    queued, finished = publish(real_redis, settings), publish(real_redis, settings)
    real_redis.client.hset(keys.campaign(finished), mapping={keys.STATE: "completed", keys.SUBMITTED: 3})

    assert main(["list", "--state", "completed", "--json"]) == 0
    assert [s["campaign_id"] for s in msgspec.json.decode(capsys.readouterr().out)] == [finished]
    assert main(["purge", queued]) == 2
    assert capsys.readouterr().err == (
        f"campaign: refused: campaign '{queued}' is queued; only a completed, failed or cancelled campaign "
        "can be purged (cancel it first)\n"
    )
    assert main(["purge", finished]) == 0
    assert capsys.readouterr().out == f"campaign {finished}: purged (completed)\n"
    assert main(["purge", finished]) == 2
    assert capsys.readouterr().err == f"campaign: refused: no campaign '{finished}' in Redis\n"
    assert main(["list", "--state", "completed"]) == 0
    assert capsys.readouterr().out == "no completed campaigns\n"
