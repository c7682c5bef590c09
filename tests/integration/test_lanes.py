"""OTP and TXN campaigns have lanes of their own: never stuck behind a running bulk campaign."""

from __future__ import annotations

import pytest

from ops.simulator import SimulatorConfig, start_in_thread
from producer.control import campaign_status, set_account_rate_limit
from producer.publish import publish_campaign
from producer.spec import build_spec
from schemas import keys
from tests.integration.test_campaign_flow import API_KEY, publish_numbers, wait_completed, wait_for


@pytest.mark.parametrize("kind", ["OTP", "TXN"])
def test_an_urgent_campaign_is_sent_while_a_bulk_campaign_still_runs(
    kind, backend, start_worker, make_settings
):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, latency_ms=5, seed=4)) as simulator:
        settings = make_settings(simulator.base_url)
        set_account_rate_limit(backend.client, settings.sid, "4000")  # the bulk campaign takes ~10 s
        broker = start_worker(settings, threads=2)
        bulk = publish_numbers(backend, broker, settings, 40_000)
        wait_for(lambda: campaign_status(backend.client, bulk.campaign_id).submitted > 0)

        urgent = [build_spec(settings=settings, sender="KLRHXA", type=kind, body="Your code is 4711",
                             prefix="+91") for _ in range(3)]  # fmt: skip
        for n, spec in enumerate(urgent):
            publish_campaign(spec, [(2, f"98765{n:05d}")], client=backend.client, broker=broker,
                             settings=settings)  # fmt: skip
        done = [wait_completed(backend, spec.campaign_id) for spec in urgent]
        still = campaign_status(backend.client, bulk.campaign_id)

    assert [status.submitted for status in done] == [1, 1, 1]
    assert still.state == "running" and still.pending > 0  # they did not wait for the bulk campaign
    assert backend.client.llen(f"dramatiq:{keys.BULK_LANE.queue}") > 0  # bulk jobs were still queued
