"""`campaign purge --apply-retention`: campaigns that finished before retention existed (no expiry) get
the one they would have had; nothing else changes, and a second pass changes nothing."""

from __future__ import annotations

import time

import pytest

from campaign.cli import main
from producer.control import apply_retention, cancel, pause
from producer.publish import publish_campaign
from producer.spec import build_spec
from redis_model import campaign_index, keys
from redis_model.steering import RetentionApplied
from redis_model.steering import apply_retention as apply_retention_in_pages
from worker.broker import build_broker

RETENTION_S = 3600
ROWS = [(2, "9000000001"), (3, "9000000002"), (4, "not-a-number"), (5, "9000000003")]


def publish(backend, settings) -> str:
    """A campaign of three recipients and an invalid row, queued (so without an expiry)."""
    spec = build_spec(settings=settings, sender="KLRHXA", type="MKT", body="Hi", prefix="+91")
    publish_campaign(spec, ROWS, client=backend.client, broker=build_broker(settings, backend.client),
                     settings=settings)  # fmt: skip
    return spec.campaign_id


def finished_long_ago(backend, settings, state: str, *, finished_at: float | None, **counts: int) -> str:
    """A campaign as a version without retention left it: finished, and no key expiring."""
    campaign_id = publish(backend, settings)
    fields = {keys.STATE: state, **counts} | ({keys.FINISHED_AT: finished_at} if finished_at else {})
    backend.client.hset(keys.campaign(campaign_id), mapping=fields)
    backend.client.hset(keys.outcomes(campaign_id), "0:0", b"{}")
    return campaign_id


def ttls(backend, campaign_id: str) -> dict[str, int]:
    found = {key: backend.client.ttl(key) for key in keys.all_keys(campaign_id)}
    return {key: ttl for key, ttl in found.items() if ttl != -2}


def test_a_finished_campaign_without_an_expiry_expires_the_retention_after_it_ended(backend, make_settings):
    settings = make_settings("http://127.0.0.1:9", retention_s=RETENTION_S)
    completed = finished_long_ago(backend, settings, "completed", finished_at=time.time() - 1000, submitted=3)
    failed = finished_long_ago(backend, settings, "failed", finished_at=None, failed=3)
    cancelled = finished_long_ago(backend, settings, "cancelled", finished_at=time.time() - 10, cancelled=3)

    assert apply_retention(backend.client, retention_s=RETENTION_S) == RetentionApplied(applied=3, removed=0)

    for campaign_id, since_finish in ((completed, 1000), (failed, 0), (cancelled, 10)):
        found = ttls(backend, campaign_id)
        assert {keys.campaign(campaign_id), keys.outcomes(campaign_id)} <= found.keys()
        expected = RETENTION_S - since_finish
        assert all(expected - 60 < ttl <= expected + 1 for ttl in found.values()), (campaign_id, found)


def test_a_campaign_finished_over_the_retention_ago_goes_now_with_its_index_entry(backend, make_settings):
    settings = make_settings("http://127.0.0.1:9", retention_s=RETENTION_S)
    long_ago = time.time() - 2 * RETENTION_S
    old = [
        finished_long_ago(backend, settings, "completed", finished_at=long_ago, submitted=3) for _ in range(3)
    ]
    recent = finished_long_ago(backend, settings, "completed", finished_at=time.time(), submitted=3)

    # Two ids a page: the removed leave the index as it is walked, and no campaign is skipped.
    assert apply_retention_in_pages(backend.client, retention_s=RETENTION_S, page=2) == RetentionApplied(1, 3)

    assert all(ttls(backend, campaign_id) == {} for campaign_id in old)
    assert campaign_index.newest_campaign_ids(backend.client, 10) == [recent]
    assert RETENTION_S - 60 < backend.client.ttl(keys.campaign(recent)) <= RETENTION_S


def test_campaigns_not_finished_or_still_settling_are_left_alone(backend, make_settings):
    settings = make_settings("http://127.0.0.1:9", retention_s=RETENTION_S)
    queued = publish(backend, settings)
    paused = publish(backend, settings)
    pause(backend.client, paused, retention_s=RETENTION_S)
    unfinished = [queued, paused]
    for state in ("scheduled", "running", "held"):
        unfinished.append(publish(backend, settings))
        backend.client.hset(keys.campaign(unfinished[-1]), keys.STATE, state)
    settling = finished_long_ago(backend, settings, "cancelled", finished_at=None, cancelled=1)  # 2 pending

    assert apply_retention(backend.client, retention_s=RETENTION_S) == RetentionApplied(applied=0, removed=0)

    for campaign_id in (*unfinished, settling):
        assert set(ttls(backend, campaign_id).values()) == {-1}, campaign_id


def test_applying_the_retention_again_changes_nothing(backend, make_settings):
    settings = make_settings("http://127.0.0.1:9", retention_s=RETENTION_S)
    legacy = finished_long_ago(backend, settings, "completed", finished_at=time.time() - 1000, submitted=3)
    cancelled_now = publish(backend, settings)
    cancel(backend.client, cancelled_now, retention_s=RETENTION_S // 2)  # expiring, as this version does
    apply_retention(backend.client, retention_s=RETENTION_S)
    before = {campaign_id: ttls(backend, campaign_id) for campaign_id in (legacy, cancelled_now)}

    assert apply_retention(backend.client, retention_s=RETENTION_S) == RetentionApplied(applied=0, removed=0)

    assert {campaign_id: ttls(backend, campaign_id) for campaign_id in (legacy, cancelled_now)} == before
    assert all(0 < ttl <= RETENTION_S // 2 for ttl in before[cancelled_now].values())


def test_a_key_left_without_an_expiry_by_a_finished_campaign_gets_one(backend, make_settings):
    """A stray key (written by an older version's worker after the campaign finished) expires too."""
    settings = make_settings("http://127.0.0.1:9", retention_s=RETENTION_S)
    campaign_id = publish(backend, settings)
    cancel(backend.client, campaign_id, retention_s=RETENTION_S)
    backend.client.hset(keys.campaign(campaign_id), keys.CANCELLED, 3)
    backend.client.hset(keys.waiting(campaign_id), "0", "1700000000|3")

    assert apply_retention(backend.client, retention_s=RETENTION_S) == RetentionApplied(applied=1, removed=0)

    assert 0 < backend.client.ttl(keys.waiting(campaign_id)) <= RETENTION_S


@pytest.mark.redis
def test_purge_apply_retention_from_the_command_line(real_redis, make_settings, monkeypatch, capsys):
    monkeypatch.setenv("REDIS_URL", real_redis.url)
    monkeypatch.setenv("CAMPAIGN_RETENTION", "1h")
    settings = make_settings("http://127.0.0.1:9", retention_s=RETENTION_S)
    finished_long_ago(real_redis, settings, "completed", finished_at=time.time(), submitted=3)
    finished_long_ago(real_redis, settings, "failed", finished_at=time.time() - 2 * RETENTION_S, failed=3)
    publish(real_redis, settings)

    assert main(["purge", "--apply-retention"]) == 0
    assert capsys.readouterr().out == (
        "retention applied to 2 finished campaigns without an expiry (1 past it: removed now)\n"
    )
    assert main(["purge", "--apply-retention"]) == 0
    assert capsys.readouterr().out == (
        "retention applied to 0 finished campaigns without an expiry (0 past it: removed now)\n"
    )
    assert main(["purge", "--apply-retention", "--force"]) == 2
    assert capsys.readouterr().err == (
        "campaign: refused: --force purges one campaign now: give its ID rather than --apply-retention\n"
    )
