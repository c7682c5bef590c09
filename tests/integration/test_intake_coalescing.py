"""The asyncio intake's coalescing (the service's requests, `AsyncCampaigns.send_message`): messages
queued in one turn of the event loop go to Redis in one pipeline, each with its own id in order; Redis
failing it fails each of its callers."""

from __future__ import annotations

import asyncio

import pytest
import redis

from producer import AsyncCampaigns, Campaigns
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
        ids = await asyncio.gather(*(intake.queue(message(n), keys.TXN_LANE) for n in range(50)))
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
        intake = Failing(backend.async_factory())
        return await asyncio.gather(
            *(intake.queue(message(n), keys.TXN_LANE) for n in range(3)), return_exceptions=True
        )

    answers = asyncio.run(run())

    assert all(isinstance(answer, redis.ConnectionError) for answer in answers)


@pytest.mark.parametrize("count", [1, 3])
def test_a_later_turn_goes_in_a_pipeline_of_its_own(backend, count):
    async def run():
        intake = CountingIntake(backend.async_factory())
        for n in range(count):
            await intake.queue(message(n), keys.TXN_LANE)
        await intake.client.aclose()
        return intake.pipelines

    assert asyncio.run(run()) == count


def test_a_producer_gathering_thousands_of_messages_shares_round_trips(backend, make_settings):
    """`asyncio.gather` of 2,000 `send_message` calls: each queued once, with its own id, in a few
    pipelines (a connection each would run redis-py's pool out: MaxConnectionsError)."""

    async def run():
        client = backend.async_factory()
        async with AsyncCampaigns(
            Campaigns(backend.client, make_settings("http://127.0.0.1:9")), client
        ) as campaigns:
            intake = CountingIntake(client)
            campaigns._intake = intake  # count its pipelines
            receipts = await asyncio.gather(*(
                campaigns.send_message(to=f"+9198123{n:05d}", body=f"Order {n}", sender="KLRHXA", type="TXN")
                for n in range(2000)
            ))  # fmt: skip
            return [receipt.id for receipt in receipts], intake.pipelines

    ids, pipelines = asyncio.run(run())

    assert len(set(ids)) == 2000 and pipelines < 20
    assert backend.client.xlen(keys.message_stream(keys.TXN_LANE)) == 2000
