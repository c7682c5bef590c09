"""The account's daily cap (`campaign limit --daily`), on fakeredis and a real Redis: a campaign and single
messages send no more than it allows a UTC day, the rest waits (nothing failed), raising it lets the
rest go, and status shows its use; through the real script and real workers."""

from __future__ import annotations

import asyncio

import pytest

from campaign.cli import main
from ops.simulator import SimulatorConfig, start_in_thread
from producer import Campaigns
from producer.control import account_daily_cap, campaign_status, set_account_daily_cap
from redis_model.account_rate import AccountRate
from redis_model.suppression_list import SuppressionList
from schemas.errors import InputError
from tests.conftest import API_KEY
from tests.integration.test_campaign_flow import publish_numbers, wait_completed, wait_for
from worker.broker import build_broker

SID = "HXTEST0000IN"  # the tests' settings' account


def test_a_booking_is_cut_to_what_is_left_then_refused_until_tomorrow(backend):
    set_account_daily_cap(backend.client, SID, "25")

    async def book():
        client = backend.async_factory()
        line = AccountRate(client, SID)
        try:
            return [await line.reserve(10, urgent=False, max_ahead_s=0.1, max_share=0.05) for _ in range(4)]
        finally:
            await client.aclose()

    bookings = asyncio.run(book())
    assert [b.granted for b in bookings] == [10, 10, 5, 0]
    assert [b.capped for b in bookings] == [False, False, False, True]
    assert 0 < bookings[3].wait_s <= 86_400  # until the next UTC midnight
    used = account_daily_cap(backend.client, SID)
    assert (used.cap, used.used) == (25, 25) and used.resets_at % 86_400 == 0


def test_what_was_sent_before_a_cap_was_set_counts_against_it(backend):
    async def book(*messages: int):
        client = backend.async_factory()
        line = AccountRate(client, SID)
        try:
            booked = [await line.reserve(n, urgent=False, max_ahead_s=0.1, max_share=1.0) for n in messages]
            await line.give_back(5)  # five of them not sent after all
            return [b.granted for b in booked]
        finally:
            await client.aclose()

    assert asyncio.run(book(30, 20)) == [30, 20]  # no cap yet: all of it, and counted as today's use
    set_account_daily_cap(backend.client, SID, "60")
    assert account_daily_cap(backend.client, SID).used == 45
    assert asyncio.run(book(30)) == [15]  # what is left of the 60 (and five given back)


def test_a_campaign_stops_at_the_cap_and_goes_on_when_it_is_raised(backend, start_worker, make_settings,
                                                                    monkeypatch):  # fmt: skip
    monkeypatch.setattr("worker.stops.HELD_RECHECK_MS", 300)  # a held job looks again this soon
    set_account_daily_cap(backend.client, SID, "100")
    with start_in_thread(SimulatorConfig(api_key=API_KEY, seed=5)) as simulator:
        settings = make_settings(simulator.base_url, chunk_size=20)
        spec = publish_numbers(backend, start_worker(settings), settings, 300)
        wait_for(lambda: campaign_status(backend.client, spec.campaign_id).submitted == 100)
        status = Campaigns(backend.client, settings).status(spec.campaign_id)
        assert (status.submitted, status.failed, status.pending) == (100, 0, 200)
        assert (status.daily_cap.cap, status.daily_cap.used) == (100, 100)
        assert len(simulator.record.messages) == 100

        set_account_daily_cap(backend.client, SID, "1000")
        done = wait_completed(backend, spec.campaign_id)
        assert (done.submitted, done.failed) == (300, 0) and len(simulator.record.messages) == 300
    assert account_daily_cap(backend.client, SID).used == 300


def test_single_messages_past_the_cap_wait_queued(backend, start_worker, make_settings):
    set_account_daily_cap(backend.client, SID, "3")
    with start_in_thread(SimulatorConfig(api_key=API_KEY, seed=5)) as simulator:
        # A short lease (HTTP timeout + 10 s): held messages are reclaimed within the test.
        settings = make_settings(simulator.base_url, dlr_poll_after_s=0, http_timeout_s=1.0)
        start_worker(settings)
        campaigns = Campaigns(backend.client, settings)
        order = {"body": "Your code", "sender": "KLRHXA", "type": "TXN"}
        ids = [campaigns.send_message(to=f"+9198765000{i:02d}", **order).id for i in range(5)]
        wait_for(lambda: sum(campaigns.message(i).status == "submitted" for i in ids) == 3)
        statuses = sorted(campaigns.message(i).status for i in ids)
        assert statuses == ["queued", "queued", "submitted", "submitted", "submitted"]
        assert len(simulator.record.messages) == 3

        set_account_daily_cap(backend.client, SID, "off")
        # A message queued now goes at the consumer's next look, seconds away; the two it read and held
        # go with the next reclaim pass, once idle a lease (11 s here).
        later = campaigns.send_message(to="+919876500099", **order).id
        wait_for(lambda: campaigns.message(later).status == "submitted", timeout=15)
        wait_for(lambda: all(campaigns.message(i).status == "submitted" for i in ids), timeout=60)
        assert len(simulator.record.messages) == 6


def test_the_limit_command_sets_and_shows_the_cap_and_refuses_a_bad_one(real_redis, monkeypatch, capsys):
    monkeypatch.setenv("REDIS_URL", real_redis.url)
    monkeypatch.setenv("KALEYRA_SID", SID)
    assert main(["limit", "--daily", "50000"]) == 0
    assert capsys.readouterr().out == (
        f"account {SID}: no rate limit; daily cap 50,000, 0 used today (UTC; resets at 00:00)\n"
    )
    assert main(["limit", "20", "--daily", "off"]) == 0
    assert capsys.readouterr().out == f"account {SID}: 20 messages per second\n"
    assert main(["limit", "--daily", "lots"]) == 2
    assert "daily cap 'lots' is not a whole number" in capsys.readouterr().err
    with pytest.raises(InputError):
        set_account_daily_cap(real_redis.client, SID, "0")
    set_account_daily_cap(real_redis.client, SID, "7")
    assert main(["limit", "off"]) == 0  # the rate limit goes, the cap stays
    assert capsys.readouterr().out.endswith("daily cap 7, 0 used today (UTC; resets at 00:00)\n")


def test_what_is_booked_and_not_sent_leaves_the_cap(backend, start_worker, make_settings):
    """Chunks cut at numbers that opted out after publishing: the cap counts the messages sent, not the
    bookings, so the campaign sends all of its cap."""
    set_account_daily_cap(backend.client, SID, "100")
    with start_in_thread(SimulatorConfig(api_key=API_KEY, seed=5)) as simulator:
        settings = make_settings(simulator.base_url, chunk_size=20)
        spec = publish_numbers(backend, build_broker(settings, backend.client), settings, 300)
        opted = [f"+9190000{i:05d}" for i in (3, 11, 12, 47, 90)]  # cut five chunks short
        SuppressionList(backend.client, SID).add(opted)
        start_worker(settings)
        wait_for(lambda: campaign_status(backend.client, spec.campaign_id).submitted == 100)
        status = campaign_status(backend.client, spec.campaign_id, sid=SID)
    assert (status.submitted, status.failures) == (100, {"SUPPRESSED": 5})
    assert status.daily_cap.used == 100 == len(simulator.record.messages)


def test_requests_refused_with_e403_and_retried_count_once(backend, start_worker, make_settings):
    set_account_daily_cap(backend.client, SID, "10000")
    with start_in_thread(SimulatorConfig(api_key=API_KEY, seed=5, e403_rate=0.3)) as simulator:
        settings = make_settings(simulator.base_url, chunk_size=20)
        spec = publish_numbers(backend, start_worker(settings), settings, 200)
        status = wait_completed(backend, spec.campaign_id)
    assert status.retried > 0 and status.submitted == 200 == len(simulator.record.messages)
    assert account_daily_cap(backend.client, SID).used == 200  # what was sent, not what was tried
