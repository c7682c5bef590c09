"""OTP and TXN campaigns have lanes of their own: never stuck behind a running bulk campaign."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from ops.simulator import SimulatorConfig, start_in_thread
from producer.control import campaign_status, pause, set_account_rate_limit
from producer.publish import publish_campaign
from producer.spec import build_spec
from redis_model import keys
from tests.integration.test_campaign_flow import API_KEY, publish_numbers, wait_completed, wait_for
from worker.broker import build_broker
from worker.context import WorkerContext
from worker.sending import send_job
from worker.stops import MakeWay
from worker.urgent import CAME_BACK, UrgentWatch

RETENTION_S = 3600  # how long a finished campaign stays in Redis


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


def test_a_bulk_job_hands_its_only_thread_to_an_otp_after_its_chunk(backend, start_worker, make_settings):
    """One worker thread, one bulk job of 40 chunks: the OTP published during it does not wait for
    the rest of the job, which goes back to its queue and is finished afterwards, each number once."""
    with start_in_thread(SimulatorConfig(api_key=API_KEY, latency_ms=25, seed=4)) as simulator:
        settings = make_settings(simulator.base_url, chunk_size=50, job_size=2000)
        broker = start_worker(settings, threads=1)
        bulk = publish_numbers(backend, broker, settings, 2000)
        wait_for(lambda: campaign_status(backend.client, bulk.campaign_id).submitted > 0)

        otp = build_spec(settings=settings, sender="KLRHXA", type="OTP", body="Your code is 4711",
                         prefix="+91")  # fmt: skip
        publish_campaign(otp, [(2, "9876500000")], client=backend.client, broker=broker, settings=settings)
        assert wait_completed(backend, otp.campaign_id).submitted == 1
        meanwhile = campaign_status(backend.client, bulk.campaign_id)
        done = wait_completed(backend, bulk.campaign_id)
        sent = simulator.record.counts_by_number()

    assert meanwhile.pending > 0  # the job it interrupted was not finished first
    assert done.submitted == 2000
    assert len(sent) == 2001 and set(sent.values()) == {1}


def test_a_bulk_run_sends_one_chunk_before_making_way_and_urgent_jobs_never_do(
    backend, simulator, make_settings
):
    settings = make_settings(simulator.base_url, chunk_size=100)
    spec = publish_numbers(backend, build_broker(settings, backend.client), settings, 300)

    async def run(delivery: str, *, urgent: bool) -> None:
        context = WorkerContext(settings, backend.async_factory)
        context.urgent = _AlwaysWaiting()
        try:
            await send_job(context, spec.campaign_id, 0, delivery=delivery, last_attempt=False, urgent=urgent)
        finally:
            await context.aclose()

    for delivery in ("m1", "m2"):
        with pytest.raises(MakeWay):
            asyncio.run(run(delivery, urgent=False))
    assert campaign_status(backend.client, spec.campaign_id).submitted == 200  # a chunk per run
    asyncio.run(run("m3", urgent=True))
    assert campaign_status(backend.client, spec.campaign_id).submitted == 300


class _AlwaysWaiting(UrgentWatch):
    """An urgent job waits for a thread whenever a bulk job asks."""

    def hand_over(self) -> bool:
        return True


def test_an_urgent_job_that_comes_back_is_marked_so(backend, start_worker, make_settings):
    """A paused TXN campaign's job comes back every few seconds: marked, it never makes a running
    bulk job hand its thread over (`UrgentWatch` passes it by)."""
    with start_in_thread(SimulatorConfig(api_key=API_KEY, seed=4)) as simulator:
        settings = make_settings(simulator.base_url)
        txn = build_spec(settings=settings, sender="KLRHXA", type="TXN", body="Your order shipped",
                         prefix="+91")  # fmt: skip
        broker = build_broker(settings, backend.client)
        publish_campaign(txn, [(2, "9876500000")], client=backend.client, broker=broker, settings=settings)
        pause(backend.client, txn.campaign_id, retention_s=RETENTION_S)
        start_worker(settings, threads=1)

        def came_back() -> bool:
            for key in backend.client.scan_iter(f"dramatiq:{keys.TXN_LANE.queue}*.msgs"):
                for data in backend.client.hvals(key):
                    if msgspec.json.decode(data)["options"].get(CAME_BACK):
                        return True
            return False

        wait_for(came_back, timeout=30)
    assert campaign_status(backend.client, txn.campaign_id).submitted == 0
