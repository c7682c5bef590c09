"""Scheduled campaigns (`--at`): held until 20 minutes before their time, cancellable until then,
then sent with Kaleyra's `time`; on fakeredis and on a real Redis, against the simulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import worker.sending
from producer.control import campaign_status, cancel, pause, resume
from schemas import keys
from schemas.campaign import SCHEDULE_LEAD_S
from tests.integration.test_campaign_flow import publish_numbers, wait_completed, wait_for


@pytest.fixture(autouse=True)
def quick_recheck(monkeypatch):
    """Held jobs look again every 50 ms instead of every minute."""
    monkeypatch.setattr(worker.sending, "HELD_RECHECK_MS", 50)


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

    assert pause(backend.client, spec.campaign_id) == "paused"
    assert resume(backend.client, spec.campaign_id) == "scheduled"  # still held until its release
    cancel(backend.client, spec.campaign_id)

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
