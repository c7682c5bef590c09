"""Single messages from Python: `send_message` puts one entry on its lane's stream, an idempotency key
makes a retry send nothing more, `message(id)` tells where it stands, bad input is refused naming it."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from ops.services import RedisServer
from producer import (
    AsyncCampaigns,
    Campaigns,
    IdempotencyConflict,
    MessageStatus,
    SpecError,
    UnknownMessageError,
)
from producer.messages import key_digest
from redis_model import keys, records
from redis_model.message_intake import MessageIntake
from schemas.campaign import MessageType
from schemas.message import SingleMessage
from tests.conftest import CI, TEST_REDIS_URL

ROOT = Path(__file__).resolve().parents[2]
ORDER_SHIPPED = {"to": "+919812345678", "sender": "KLRHXA", "type": "TXN", "body": "Your order shipped"}


@pytest.fixture
def campaigns(backend, make_settings) -> Campaigns:
    return Campaigns(backend.client, make_settings("http://127.0.0.1:9"))


def entries(client: redis.Redis, lane: keys.Lane) -> list[tuple[str, SingleMessage]]:
    """The lane's stream: each entry's message id and the message it holds."""
    return [
        (keys.message_id(lane, entry_id.decode()), records.decode_message(fields[b"m"]))
        for entry_id, fields in client.xrange(keys.message_stream(lane))
    ]


def test_a_message_is_one_stream_entry_on_its_lane_that_decodes_to_it(campaigns, backend):
    receipt = campaigns.send_message(**ORDER_SHIPPED, reference="order-42")

    [(entry_id, message)] = entries(backend.client, keys.TXN_LANE)
    assert receipt.id == entry_id and receipt.id.startswith("txn-")
    assert receipt.status is MessageStatus.QUEUED
    assert (message.to, message.body, message.sender, message.type) == (
        "+919812345678", "Your order shipped", "KLRHXA", MessageType.TXN,
    )  # fmt: skip
    assert message.reference == "order-42" and message.queued_at > 0
    assert sorted(backend.client.keys("*")) == [keys.message_stream(keys.TXN_LANE).encode()]


@pytest.mark.parametrize("message_type, lane", [("otp", keys.OTP_LANE), ("MKT", keys.BULK_LANE)])
def test_each_type_goes_on_its_lane(message_type, lane, campaigns, backend):
    receipt = campaigns.send_message(**ORDER_SHIPPED | {"type": message_type})

    assert [entry_id for entry_id, _ in entries(backend.client, lane)] == [receipt.id]


def test_a_national_number_takes_the_prefix_or_the_default_prefix(backend, make_settings):
    campaigns = Campaigns(backend.client, make_settings("http://127.0.0.1:9", default_prefix="+91"))

    campaigns.send_message(**ORDER_SHIPPED | {"to": "09812345678"})
    campaigns.send_message(**ORDER_SHIPPED | {"to": "(415) 555-2671", "prefix": "+1"})

    assert [m.to for _, m in entries(backend.client, keys.TXN_LANE)] == ["+919812345678", "+14155552671"]


def test_a_body_with_braces_is_sent_as_written(campaigns, backend):
    campaigns.send_message(**ORDER_SHIPPED | {"body": "Hi {name}, code {1234}"})

    assert [m.body for _, m in entries(backend.client, keys.TXN_LANE)] == ["Hi {name}, code {1234}"]


def test_a_retry_with_the_same_key_returns_the_first_receipt_and_queues_nothing(campaigns, backend):
    first = campaigns.send_message(**ORDER_SHIPPED, idempotency_key="order-42-shipped")
    again = campaigns.send_message(**ORDER_SHIPPED, idempotency_key="order-42-shipped")

    assert again == first
    assert [entry_id for entry_id, _ in entries(backend.client, keys.TXN_LANE)] == [first.id]
    stored = keys.idempotency("", key_digest("order-42-shipped"))
    assert 86_000 < backend.client.ttl(stored) <= 86_400
    assert not [k for k in backend.client.keys("*") if b"order-42" in k]  # only its digest is stored


def test_the_same_key_for_another_message_is_a_conflict_and_queues_nothing(campaigns, backend):
    first = campaigns.send_message(**ORDER_SHIPPED, idempotency_key="k-1")

    with pytest.raises(
        IdempotencyConflict, match=r"idempotency key 'k-1' was used .* for another message"
    ) as e:
        campaigns.send_message(**ORDER_SHIPPED | {"body": "Your order is delayed"}, idempotency_key="k-1")

    assert e.value.message_id == first.id
    assert len(entries(backend.client, keys.TXN_LANE)) == 1


def test_another_key_queues_the_same_message_again(campaigns, backend):
    campaigns.send_message(**ORDER_SHIPPED, idempotency_key="k-1")
    campaigns.send_message(**ORDER_SHIPPED, idempotency_key="k-2")

    assert len(entries(backend.client, keys.TXN_LANE)) == 2


def test_a_queued_message_s_state_is_queued_with_its_reference(campaigns):
    receipt = campaigns.send_message(**ORDER_SHIPPED, reference="order-42")

    state = campaigns.message(receipt.id)

    assert (state.id, state.status, state.reference, state.message_id) == (
        receipt.id, MessageStatus.QUEUED, "order-42", None,
    )  # fmt: skip


def test_the_state_a_worker_wrote_wins_and_outlives_the_stream_entry(campaigns, backend):
    receipt = campaigns.send_message(**ORDER_SHIPPED, reference="order-42")
    lane, entry_id = keys.message_entry(receipt.id) or pytest.fail("not a message id")
    backend.client.hset(keys.message(receipt.id), mapping={
        "status": "submitted", "message_id": "8a1e2b3c4d:0", "reference": "order-42", "at": "1765000000.5",
    })  # fmt: skip
    backend.client.xdel(keys.message_stream(lane), entry_id)  # settled: the worker deletes the entry

    state = campaigns.message(receipt.id)

    assert (state.status, state.message_id, state.code, state.reference) == (
        MessageStatus.SUBMITTED, "8a1e2b3c4d:0", None, "order-42",
    )  # fmt: skip


def test_a_failed_message_s_state_carries_its_code(campaigns, backend):
    receipt = campaigns.send_message(**ORDER_SHIPPED)
    backend.client.hset(keys.message(receipt.id), mapping={"status": "failed", "code": "E413"})

    assert (campaigns.message(receipt.id).status, campaigns.message(receipt.id).code) == ("failed", "E413")


def test_an_unknown_id_is_refused(campaigns):
    with pytest.raises(UnknownMessageError, match="no message 'txn-1765000000000-0'"):
        campaigns.message("txn-1765000000000-0")


@pytest.mark.parametrize("message_id", ["", "sms-1-0", "txn-1765000000000", "../etc", "txn-1-x"])
def test_a_malformed_id_is_refused_without_asking_redis(message_id, campaigns, backend, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("Redis was asked")

    monkeypatch.setattr(backend.client, "pipeline", refuse)
    with pytest.raises(UnknownMessageError, match="no message"):
        campaigns.message(message_id)


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"to": "12345"}, r"to '12345' is not a number we can send to: has no country code"),
        ({"to": "+91123"}, r"to '\+91123' is not a number we can send to: too short"),
        ({"to": "+9198123abc"}, r"to '\+9198123abc' is not a number we can send to"),
        ({"body": "  "}, r"body is empty"),
        ({"body": "a\x07b"}, r"body has the control character '\\x07'"),
        ({"body": "x" * 4001}, r"body has 4001 characters; Kaleyra accepts at most 4000"),
        ({"type": "SMS"}, r"type 'SMS' is not one of"),
        ({"sender": "TOO-LONG-SENDER"}, r"sender 'TOO-LONG-SENDER' is not a sender ID"),
        ({"unicode": "0", "body": "नमस्ते"}, r"unicode 0 cannot carry"),
        ({"template_id": "12"}, r"template-id '12' is not a DLT ID"),
        ({"prefix": "+999"}, r"prefix '\+999' is not a country calling code"),
        ({"reference": "r" * 65}, r"reference 'r{65}' must be 1-64 printable characters"),
        ({"reference": "a\nb"}, r"reference 'a\\nb' must be 1-64 printable characters"),
        ({"idempotency_key": ""}, r"idempotency key '' must be 1-255 printable characters"),
    ],
)
def test_bad_input_is_refused_naming_it_and_nothing_is_queued(change, reason, campaigns, backend):
    with pytest.raises(SpecError, match=reason):
        campaigns.send_message(**ORDER_SHIPPED | change)

    assert backend.client.keys("*") == []


def test_queue_many_queues_each_on_its_lane_in_one_round_trip(backend):
    intake = MessageIntake(backend.client)
    otp = SingleMessage(to="+919812345678", body="1234", sender="KLRHXA", type=MessageType.OTP)
    txn = SingleMessage(to="+919812345679", body="Shipped", sender="KLRHXA", type=MessageType.TXN)

    ids = intake.queue_many([(otp, keys.OTP_LANE), (txn, keys.TXN_LANE), (txn, keys.TXN_LANE)])

    assert [i.split("-")[0] for i in ids] == ["otp", "txn", "txn"]
    assert entries(backend.client, keys.OTP_LANE) == [(ids[0], otp)]
    assert entries(backend.client, keys.TXN_LANE) == [(ids[1], txn), (ids[2], txn)]


def test_async_campaigns_sends_and_reads_messages_natively(backend, make_settings):
    async def run():
        sync = Campaigns(backend.client, make_settings("http://127.0.0.1:9"))
        async with AsyncCampaigns(sync, backend.async_factory()) as campaigns:
            first = await campaigns.send_message(**ORDER_SHIPPED, idempotency_key="k", reference="r-1")
            again = await campaigns.send_message(**ORDER_SHIPPED, idempotency_key="k", reference="r-1")
            state = await campaigns.message(first.id)
            with pytest.raises(IdempotencyConflict):
                await campaigns.send_message(**ORDER_SHIPPED | {"body": "other"}, idempotency_key="k")
            with pytest.raises(UnknownMessageError):
                await campaigns.message("txn-1-0")
            return first, again, state

    first, again, state = asyncio.run(run())

    assert again == first
    assert (state.status, state.reference) == (MessageStatus.QUEUED, "r-1")
    assert [entry_id for entry_id, _ in entries(backend.client, keys.TXN_LANE)] == [first.id]


def test_async_campaigns_on_a_client_without_a_url_asks_for_an_async_client(backend, make_settings):
    campaigns = AsyncCampaigns(Campaigns(backend.client, make_settings("http://127.0.0.1:9")))

    with pytest.raises(TypeError, match=r"needs client=redis.asyncio.Redis"):
        asyncio.run(campaigns.send_message(**ORDER_SHIPPED))


@pytest.mark.redis
def test_the_example_runs(real_redis):
    env = os.environ | {"REDIS_URL": TEST_REDIS_URL, "KALEYRA_SID": "HXEXAMPLE"}
    ran = subprocess.run([sys.executable, "examples/send_message.py"], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=60)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert "Traceback" not in ran.stderr
    assert "queued" in ran.stdout
    assert real_redis.client.xlen(keys.message_stream(keys.TXN_LANE)) == 1  # the retry queued nothing


@pytest.fixture
def own_redis(tmp_path) -> Iterator[redis.Redis]:
    """A redis-server of this test's own: INFO commandstats counts the whole server's commands."""
    if shutil.which("redis-server") is None:
        if CI:
            raise RuntimeError("CI=true needs redis-server on the PATH")
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path)
    server.start()
    client = redis.Redis.from_url(server.url)
    yield client
    client.close()
    server.kill()


def commands_of(client: redis.Redis, send) -> dict[str, int]:
    """The commands (name -> calls) Redis ran for `send()`, from INFO commandstats."""
    client.config_resetstat()
    send()
    stats = client.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): figures["calls"]
        for name, figures in stats.items()
        if name not in ("cmdstat_config|resetstat", "cmdstat_info")
    }


@pytest.mark.redis
def test_a_message_costs_one_command_and_three_with_an_idempotency_key(own_redis, make_settings):
    campaigns = Campaigns(own_redis, make_settings("http://127.0.0.1:9"))
    campaigns.send_message(**ORDER_SHIPPED, idempotency_key="warm-up")  # loads the script once
    many = 100

    plain = commands_of(own_redis, lambda: [campaigns.send_message(**ORDER_SHIPPED) for _ in range(many)])
    keyed = commands_of(own_redis, lambda: [
        campaigns.send_message(**ORDER_SHIPPED, idempotency_key=f"k-{i}") for i in range(many)
    ])  # fmt: skip
    retried = commands_of(own_redis, lambda: [
        campaigns.send_message(**ORDER_SHIPPED, idempotency_key=f"k-{i}") for i in range(many)
    ])  # fmt: skip

    assert plain == {"xadd": many}
    assert keyed == {"evalsha": many, "xadd": many, "set": many}
    assert retried == {"evalsha": many, "xadd": many, "set": many, "xdel": many}
    assert own_redis.xlen(keys.message_stream(keys.TXN_LANE)) == 1 + 2 * many


@pytest.mark.redis
def test_a_queued_message_s_stream_bytes_are_bounded(own_redis, make_settings):
    """About 100 bytes of stream per queued message with a short body (listpack entries; 1,000
    messages so that the stream's fixed cost is shared out)."""
    campaigns = Campaigns(own_redis, make_settings("http://127.0.0.1:9"))
    many = 1000
    for i in range(many):
        campaigns.send_message(**ORDER_SHIPPED | {"to": f"+9198123{i:05d}"}, reference=f"order-{i}")

    used = own_redis.memory_usage(keys.message_stream(keys.TXN_LANE), samples=0)

    assert used is not None and used / many < 200, used / many
