"""The public Python API: `from producer import Campaigns` publishes and steers campaigns without the
worker; `AsyncCampaigns` does the same from asyncio; the examples run."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from ops.simulator import SimulatorConfig, start_in_thread
from producer import AsyncCampaigns, Campaigns
from redis_model import keys
from redis_model.doorbell import channel
from schemas.errors import InputError, RecipientsError, SpecError
from tests.conftest import TEST_REDIS_URL
from tests.integration.test_campaign_flow import API_KEY, events_of, wait_for

ROOT = Path(__file__).resolve().parents[2]


def test_publishing_imports_nothing_of_the_worker():
    code = "import sys, producer; print(sorted(m for m in sys.modules if m.split('.')[0] == 'worker'))"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert found.stdout.strip() == "[]"


def test_a_campaign_from_dicts_is_sent_with_each_row_s_fields(
    backend, start_worker, make_settings, event_log
):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, seed=1)) as simulator:
        settings = make_settings(simulator.base_url)
        start_worker(settings)
        campaigns = Campaigns(backend.client, settings)
        sent = campaigns.send_campaign(
            [{"to": "9876543210", "Name": "Asha"}, {"TO": "+91 98765 43211"}, {"to": "9876543210"}],
            sender="KLRHXA", type="MKT", prefix="+91", body="Hi {name|there}",
        )  # fmt: skip
        done = wait_for(lambda: (s := campaigns.status(sent.campaign_id)).state == "completed" and s)

    assert (sent.total, sent.duplicates, sent.invalid) == (2, 1, 0)
    assert done.submitted == 2
    assert sorted(m.body for m in simulator.record.messages) == ["Hi Asha", "Hi there"]
    submitted = [e for e in events_of(event_log) if e["event"] == "sms.submitted"]
    assert sorted(e["line"] for e in submitted) == [1, 2]  # each event names its row


def test_a_campaign_from_a_file_path(backend, make_settings, tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text("to,name\n9876543210,Asha\n9876543211,Ravi\n")
    campaigns = Campaigns(backend.client, make_settings("http://127.0.0.1:9"))

    sent = campaigns.send_campaign(path, sender="KLRHXA", type="MKT", prefix="+91", body="Hi {name}")

    assert (sent.total, sent.jobs, sent.state) == (2, 1, "queued")
    assert backend.client.llen("dramatiq:campaigns") == 1  # one job, on the bulk lane's queue


def test_bad_rows_are_refused_naming_the_row_and_nothing_is_written(backend, make_settings):
    campaigns = Campaigns(backend.client, make_settings("http://127.0.0.1:9"))

    with pytest.raises(RecipientsError, match="recipients row 2: no 'to' key"):
        campaigns.send_campaign(
            [{"to": "9876543210"}, {"phone": "1"}], sender="KLRHXA", type="MKT", body="Hi"
        )
    with pytest.raises(RecipientsError, match="row 1: field 'name' has the control character"):
        campaigns.send_campaign([{"to": "9876543210", "name": "A\x07"}], sender="KLRHXA", type="MKT",
                                prefix="+91", body="Hi {name}")  # fmt: skip
    with pytest.raises(SpecError):
        campaigns.send_campaign([{"to": "9876543210"}], sender="KLRHXA", type="NOPE", body="Hi")

    assert backend.client.keys("*") == []


def test_pause_resume_cancel_and_the_newest_first_list(backend, make_settings):
    campaigns = Campaigns(backend.client, make_settings("http://127.0.0.1:9"))
    first = campaigns.send_campaign([{"to": "+919876543210"}], sender="KLRHXA", type="MKT", body="a")
    second = campaigns.send_campaign([{"to": "+919876543211"}], sender="KLRHXA", type="MKT", body="b")

    assert campaigns.pause(first.campaign_id) == "paused"
    assert campaigns.resume(first.campaign_id) == "queued"
    assert campaigns.cancel(second.campaign_id) == "cancelled"
    listed = campaigns.list_campaigns()

    assert [s.campaign_id for s in listed] == [second.campaign_id, first.campaign_id]
    assert [s.state for s in listed] == ["cancelled", "queued"]
    assert [s.campaign_id for s in campaigns.list_campaigns(limit=1)] == [second.campaign_id]
    with pytest.raises(InputError, match="is cancelled; only a campaign that is paused can be resumed"):
        campaigns.resume(second.campaign_id)


def test_async_campaigns_has_the_same_methods_as_coroutines(backend, make_settings):
    async def run() -> tuple[str, str, list[str]]:
        campaigns = AsyncCampaigns(Campaigns(backend.client, make_settings("http://127.0.0.1:9")))
        sent = await campaigns.send_campaign([{"to": "+919876543210"}], sender="KLRHXA", type="TXN", body="x")
        paused = await campaigns.pause(sent.campaign_id)
        status = await campaigns.status(sent.campaign_id)
        return paused, status.state, [s.campaign_id for s in await campaigns.list_campaigns()]

    paused, state, listed = asyncio.run(run())

    assert (paused, state, len(listed)) == ("paused", "paused", 1)
    assert backend.client.llen(f"dramatiq:{keys.TXN_LANE.queue}") == 1  # on the TXN lane


def test_the_producer_rings_the_idle_workers_doorbell(backend, make_settings):
    bell = backend.client.pubsub(ignore_subscribe_messages=True)
    bell.subscribe(channel(keys.BULK_LANE.queue))
    try:
        Campaigns(backend.client, make_settings("http://127.0.0.1:9")).send_campaign(
            [{"to": "+919876543210"}], sender="KLRHXA", type="MKT", body="x"
        )
        rung = wait_for(lambda: bell.get_message(timeout=0.1), timeout=5)
    finally:
        bell.close()
    assert rung["channel"] == channel(keys.BULK_LANE.queue).encode()


@pytest.mark.redis
@pytest.mark.parametrize("example", ["publish_campaign.py", "async_campaigns.py"])
def test_the_examples_run(example, real_redis):
    env = os.environ | {"REDIS_URL": TEST_REDIS_URL, "KALEYRA_SID": "HXEXAMPLE"}
    ran = subprocess.run([sys.executable, f"examples/{example}"], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=60)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert "Traceback" not in ran.stderr
    assert ran.stdout.strip()
    assert real_redis.client.zcard(keys.CAMPAIGNS_BY_CREATION) == 1


def test_a_client_that_decodes_responses_is_refused_before_anything_is_written(backend, make_settings):
    decoding = redis.Redis.from_url(TEST_REDIS_URL, decode_responses=True)
    try:
        with pytest.raises(TypeError, match="decode_responses"):
            Campaigns(decoding, make_settings("http://127.0.0.1:9"))
    finally:
        decoding.close()


@pytest.mark.parametrize("share", [5, -0.1, "5"])
def test_a_max_invalid_share_outside_0_to_1_is_refused(share, backend, make_settings):
    campaigns = Campaigns(backend.client, make_settings("http://127.0.0.1:9"))
    with pytest.raises(SpecError, match="max-invalid"):
        campaigns.send_campaign(
            [{"to": "+919876543210"}], sender="KLRHXA", type="MKT", body="x", max_invalid=share
        )
    assert backend.client.keys("*") == []


def test_a_doorbell_that_cannot_ring_leaves_the_job_queued(backend, make_settings, monkeypatch, caplog):
    def refuse(*args, **kwargs):
        raise redis.ConnectionError("publish refused")

    campaigns = Campaigns(backend.client, make_settings("http://127.0.0.1:9"))
    monkeypatch.setattr(backend.client, "publish", refuse)
    sent = campaigns.send_campaign([{"to": "+919876543210"}], sender="KLRHXA", type="MKT", body="x")

    assert sent.jobs == backend.client.llen(f"dramatiq:{keys.BULK_LANE.queue}") == 1
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


def test_listing_by_a_state_that_is_none_is_refused_naming_it(backend, make_settings):
    campaigns = Campaigns(backend.client, make_settings("http://127.0.0.1:9"))
    with pytest.raises(SpecError, match="state 'sent' is not a campaign state; use one of queued,"):
        campaigns.list_campaigns(state="sent")
