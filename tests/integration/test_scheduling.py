"""Scheduled campaigns (`--at`): held until 20 minutes before their time, cancellable until then,
then sent with Kaleyra's `time`; quiet hours (`--send-window`); on fakeredis and on a real Redis,
against the simulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

import worker.stops
from producer.control import campaign_status, cancel, pause, resume
from producer.publish import publish_campaign
from producer.spec import build_spec
from redis_model import keys
from schemas.campaign import SCHEDULE_LEAD_S
from tests.integration.test_campaign_flow import publish_numbers, wait_completed, wait_for

RETENTION_S = 3600  # how long a finished campaign stays in Redis


@pytest.fixture(autouse=True)
def quick_recheck(monkeypatch):
    """Held jobs look again every 50 ms instead of every minute."""
    monkeypatch.setattr(worker.stops, "HELD_RECHECK_MS", 50)


def wait_until_held(backend) -> None:
    """A worker has looked at the job and held it: it waits in the delay queue to be looked at again."""
    wait_for(lambda: backend.client.hlen("dramatiq:campaigns.DQ.msgs") > 0)


def test_a_scheduled_campaign_is_held_and_can_be_cancelled_before_its_time(
    backend, simulator, start_worker, make_settings
):
    settings = make_settings(simulator.base_url)
    broker = start_worker(settings)
    at = (datetime.now(UTC) + timedelta(hours=2)).isoformat()

    spec = publish_numbers(backend, broker, settings, 30, at=at)
    wait_until_held(backend)
    status = campaign_status(backend.client, spec.campaign_id)
    assert (status.state, status.pending, status.scheduled_for) == ("scheduled", 30, spec.at)
    assert status.release_at == pytest.approx(datetime.fromisoformat(spec.at).timestamp() - SCHEDULE_LEAD_S)

    assert pause(backend.client, spec.campaign_id, retention_s=RETENTION_S) == "paused"
    assert (
        resume(backend.client, spec.campaign_id, retention_s=RETENTION_S) == "scheduled"
    )  # still held until its release
    cancel(backend.client, spec.campaign_id, retention_s=RETENTION_S)

    status = wait_for(lambda: (s := campaign_status(backend.client, spec.campaign_id)).pending == 0 and s)
    assert (status.state, status.cancelled, status.submitted) == ("cancelled", 30, 0)
    assert simulator.record.requests == 0


def test_once_released_a_scheduled_campaign_goes_to_kaleyra_with_its_time(
    backend, simulator, start_worker, make_settings
):
    settings = make_settings(simulator.base_url)
    broker = start_worker(settings)
    at = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    spec = publish_numbers(backend, broker, settings, 30, at=at)
    wait_until_held(backend)
    assert simulator.record.requests == 0

    # Time passes: the release comes.
    backend.client.hset(keys.campaign(spec.campaign_id), keys.RELEASE_AT, datetime.now(UTC).timestamp() - 1)
    status = wait_completed(backend, spec.campaign_id)

    assert status.submitted == 30
    assert {m.time for m in simulator.record.messages} == {spec.at}


def window_around_now(zone: str, hours: int = 1) -> str:
    """A sending window open now in `zone`, `hours` either side (closed 10+ hours away)."""
    here = datetime.now(ZoneInfo(zone))
    opens, closes = here - timedelta(hours=hours), here + timedelta(hours=hours)
    return f"{opens:%H:%M}-{closes:%H:%M}"


def test_recipients_outside_their_sending_window_wait_visibly_while_the_others_are_sent(
    backend, simulator, start_worker, make_settings
):
    settings = make_settings(simulator.base_url)
    broker = start_worker(settings)
    india = [f"+9190000{i:05d}" for i in range(5)]
    new_york = [f"+121255501{i:02d}" for i in range(3)]  # 10.5 hours behind: outside the window
    spec = build_spec(settings=settings, sender="KLRHXA", type="MKT", body="Sale",
                      send_window=window_around_now("Asia/Kolkata"))  # fmt: skip
    rows = [(i + 2, n) for i, n in enumerate(india[:3] + new_york + india[3:])]
    publish_campaign(spec, rows, client=backend.client, broker=broker, settings=settings)

    status = wait_for(
        lambda: (
            (s := campaign_status(backend.client, spec.campaign_id)).submitted == 5
            and s.waiting_for_window == 3
            and s
        )
    )
    assert sorted(m.to for m in simulator.record.messages) == sorted(india)
    assert (status.pending, status.state) == (3, "running")
    assert status.window_opens_at > datetime.now(UTC).timestamp() + 8 * 3600

    cancel(backend.client, spec.campaign_id, retention_s=RETENTION_S)
    status = wait_for(lambda: (s := campaign_status(backend.client, spec.campaign_id)).cancelled == 3 and s)
    assert (status.waiting_for_window, status.window_opens_at) == (0, None)
    assert len(simulator.record.messages) == 5


def test_a_scheduled_chunk_waits_when_its_time_falls_outside_the_sending_window(
    backend, simulator, start_worker, make_settings
):
    settings = make_settings(simulator.base_url)
    broker = start_worker(settings)
    here = datetime.now(ZoneInfo("Asia/Kolkata"))
    window = (
        f"{here - timedelta(hours=1):%H:%M}-{here + timedelta(minutes=20):%H:%M}"  # open now, not at `at`
    )
    at = (datetime.now(UTC) + timedelta(minutes=40)).isoformat()
    spec = build_spec(settings=settings, sender="KLRHXA", type="MKT", body="Sale", at=at, send_window=window)
    publish_campaign(spec, [(2, "+919000000001")], client=backend.client, broker=broker, settings=settings)

    backend.client.hset(keys.campaign(spec.campaign_id), keys.RELEASE_AT, datetime.now(UTC).timestamp() - 1)
    status = wait_for(
        lambda: (s := campaign_status(backend.client, spec.campaign_id)).waiting_for_window and s
    )

    assert status.window_opens_at > datetime.fromisoformat(spec.at).timestamp()
    assert simulator.record.requests == 0
