"""The ceiling: the same messages as pre-encoded 1000-node POSTs, the same number in flight, replies
decoded, on the workers' event loop (uvloop); no queue, no state, no logging. What the gateway and
this machine allow at best.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import uvloop

from schemas.campaign import CampaignSpec, Recipient
from schemas.settings import Settings
from worker.gateway.replies import parse_reply
from worker.payload import PayloadBuilder


def measure_ceiling(
    settings: Settings, spec: CampaignSpec, numbers: list[str], *, in_flight: int, chunk: int = 1000
) -> tuple[int, float]:
    """Send `numbers` in chunks of `chunk`, `in_flight` requests at once; (messages accepted, seconds)."""
    return send_all(settings, encode_chunks(settings, spec, numbers, chunk), in_flight)


def encode_chunks(
    settings: Settings, spec: CampaignSpec, numbers: list[str], chunk: int = 1000
) -> list[bytes]:
    """The requests, encoded beforehand."""
    builder = PayloadBuilder(spec, settings)
    return [
        builder.encode([Recipient(n, 0) for n in numbers[i : i + chunk]])
        for i in range(0, len(numbers), chunk)
    ]


def send_all(settings: Settings, payloads: list[bytes], in_flight: int) -> tuple[int, float]:
    """POST the encoded requests, `in_flight` at once, decoding the replies; (messages accepted, seconds)."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_send_all(settings, payloads, in_flight))


async def _send_all(settings: Settings, payloads: list[bytes], in_flight: int) -> tuple[int, float]:
    headers = {"api-key": settings.api_key, "content-type": "application/json"}
    pending = iter(payloads)
    accepted = 0

    async def lane(session: aiohttp.ClientSession) -> None:
        nonlocal accepted
        for payload in pending:  # the lanes share one iterator: each payload is sent once
            async with session.post(settings.sms_json_url, data=payload, headers=headers) as reply:
                body = await reply.read()
            # Not `accepted += ...(await ...)`: that reads `accepted` before the await, and a lane
            # that finished meanwhile would be lost from the count.
            accepted += len(parse_reply(reply.status, body))

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=in_flight)) as session:
        started = time.perf_counter()
        await asyncio.gather(*(lane(session) for _ in range(in_flight)))
        return accepted, time.perf_counter() - started
