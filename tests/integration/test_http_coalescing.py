"""The service's coalescing intake: messages queued in one turn of the event loop go to Redis in one
pipeline, each with its own id in order; Redis failing it fails each of its requests."""

from __future__ import annotations

import asyncio

import pytest
import redis

from campaign.service.coalescing import CoalescingIntake
from redis_model import keys, records
from redis_model.message_intake import AsyncMessageIntake
from schemas.campaign import MessageType
from schemas.message import SingleMessage


def message(n: int) -> SingleMessage:
    return SingleMessage(to=f"+9198123{n:05d}", body=f"Order {n}", sender="KLRHXA", type=MessageType.TXN)


class CountingIntake(AsyncMessageIntake):
    """The intake, counting its pipelines."""

    pipelines = 0

    async def queue_many(self, messages):
        self.pipelines += 1
        return await super().queue_many(messages)


def test_messages_of_one_turn_go_in_one_pipeline_each_with_its_id(backend):
    async def run():
        intake = CountingIntake(backend.async_factory())
        coalesced = CoalescingIntake(intake)
        ids = await asyncio.gather(*(coalesced.queue(message(n), keys.TXN_LANE) for n in range(50)))
        await intake.client.aclose()
        return ids, intake.pipelines

    ids, pipelines = asyncio.run(run())

    assert pipelines == 1 and len(set(ids)) == 50
    stream = backend.client.xrange(keys.message_stream(keys.TXN_LANE))
    assert [keys.message_id(keys.TXN_LANE, entry_id.decode()) for entry_id, _ in stream] == ids
    assert [records.decode_message(fields[b"m"]).body for _, fields in stream] == [
        f"Order {n}" for n in range(50)
    ]


def test_redis_failing_the_pipeline_fails_each_request(backend):
    class Failing(AsyncMessageIntake):
        async def queue_many(self, messages):
            raise redis.ConnectionError("gone")

    async def run():
        coalesced = CoalescingIntake(Failing(backend.async_factory()))
        return await asyncio.gather(
            *(coalesced.queue(message(n), keys.TXN_LANE) for n in range(3)), return_exceptions=True
        )

    answers = asyncio.run(run())

    assert all(isinstance(answer, redis.ConnectionError) for answer in answers)


@pytest.mark.parametrize("count", [1, 3])
def test_a_later_turn_goes_in_a_pipeline_of_its_own(backend, count):
    async def run():
        intake = CountingIntake(backend.async_factory())
        coalesced = CoalescingIntake(intake)
        for n in range(count):
            await coalesced.queue(message(n), keys.TXN_LANE)
        await intake.client.aclose()
        return intake.pipelines

    assert asyncio.run(run()) == count
