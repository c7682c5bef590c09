"""A chunk the gateway refused is settled with its code even when Redis will not take the campaign's
last error (a partition, a failover): that note is for status only, and losing it must not kill the job
before the settlement, which rides Redis out (it would end WORKER_LOST instead of its code)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import redis
import structlog
from structlog.testing import capture_logs

from schemas.campaign import Outcome
from schemas.errors import PermanentGatewayError
from worker.chunk import _refused


class _Unreachable:
    async def note_error(self, campaign_id, error):
        raise redis.ConnectionError("Redis is on the other side of a partition")


def test_a_refused_chunk_keeps_its_code_when_its_note_cannot_be_written():
    run = SimpleNamespace(campaign_id="c1", ctx=SimpleNamespace(store=_Unreachable()))
    error = PermanentGatewayError("E606", "invalid sender", status=400)
    with capture_logs() as logs:
        outcome = asyncio.run(_refused(run, 20, error, structlog.get_logger(), Outcome.FAILED, "refused"))
    assert (outcome.outcome, outcome.size, outcome.code) == (Outcome.FAILED, 20, "E606")
    assert [log["event"] for log in logs] == ["sms.failed", "chunk.error_not_noted"]
