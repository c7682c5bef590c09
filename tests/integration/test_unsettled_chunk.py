"""A chunk that went out but whose outcome Redis would not record is never counted failed."""

from __future__ import annotations

import asyncio

import pytest
import redis

from producer.control import campaign_status
from redis_model import keys
from redis_model.ledger import ChunkLedger
from tests.integration.test_campaign_flow import publish_numbers
from worker.broker import build_broker
from worker.context import WorkerContext
from worker.sending import send_job
from worker.stops import UnsettledChunk


def test_a_sent_chunk_whose_settlement_fails_is_left_claimed_not_failed(
    backend, simulator, make_settings, monkeypatch
):
    """Even on the job's last attempt: failing it would let `campaign resend --failed` send it twice."""
    settings = make_settings(simulator.base_url, chunk_size=100)
    spec = publish_numbers(backend, build_broker(settings, backend.client), settings, 300)

    async def redis_gone(*args, **kwargs):
        raise redis.ConnectionError("Redis went away")

    monkeypatch.setattr(ChunkLedger, "settle", redis_gone)

    async def run_last_attempt():
        context = WorkerContext(settings, backend.async_factory)
        try:
            await send_job(context, spec.campaign_id, 0, delivery="m1", last_attempt=True)
        finally:
            await context.aclose()

    with pytest.raises(UnsettledChunk):
        asyncio.run(run_last_attempt())

    status = campaign_status(backend.client, spec.campaign_id)
    assert (status.failed, status.pending) == (0, 300)
    assert len(simulator.record.messages) == 100  # the first chunk went out
    claim = backend.client.hget(keys.claims(spec.campaign_id), "0").decode()
    assert claim.endswith("|0|100")  # left to go stale: the policy decides, `hold` reports it unknown
