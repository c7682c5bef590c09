"""`POST /v1/messages/batch` with an `idempotency_key` per item: a batch retried whole queues nothing
twice, a key used for another message refuses that item alone, a key twice in one batch, keyed and
unkeyed items together, a bad key refusing its item; and what a batch costs Redis."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio.client

from ops.services import RedisServer
from producer.messages import key_digest, request_digest
from redis_model import keys
from redis_model.api_keys import ApiKeyStore
from redis_model.message_intake import MessageIntake, Once, QueuedOnce
from schemas.campaign import MessageType
from schemas.message import SingleMessage
from tests.conftest import CI, Backend
from tests.integration.http_served import Served, serving

SHIPPED = {"to": "+919812345678", "sender": "KLRHXA", "type": "TXN", "body": "Your order shipped"}
LATE = SHIPPED | {"body": "Your order is late"}
CODE = {"to": "+919812345679", "sender": "KLRHXA", "type": "OTP", "body": "Your code is 1234"}
BATCH = "/v1/messages/batch"


@pytest.fixture
def served(backend, make_settings) -> Iterator[Served]:
    _, key = ApiKeyStore(backend.client).create("orders")
    with serving(backend, make_settings("http://127.0.0.1:9")) as running:
        running.key = key
        yield running


def keyed(message: dict, key: str) -> dict:
    return message | {"idempotency_key": key}


def post(served: Served, *messages: dict) -> dict:
    answer = served.call("POST", BATCH, json_body={"messages": list(messages)})
    assert answer.status == 202, answer.body
    return answer.body


def stream_ids(backend: Backend, lane: keys.Lane) -> list[str]:
    return [
        keys.message_id(lane, entry_id.decode())
        for entry_id, _ in backend.client.xrange(keys.message_stream(lane))
    ]


def test_a_batch_retried_whole_queues_nothing_twice(served, backend):
    batch = [keyed(SHIPPED, "o-1"), keyed(CODE, "o-2"), keyed(LATE, "o-3")]

    first = post(served, *batch)
    again = post(served, *batch)

    assert [item["id"] for item in again["results"]] == [item["id"] for item in first["results"]]
    assert not any("replayed" in item for item in first["results"])
    assert all(item["replayed"] and item["status"] == "queued" for item in again["results"])
    assert (again["queued"], again["refused"]) == (3, 0)
    assert stream_ids(backend, keys.TXN_LANE) == [first["results"][0]["id"], first["results"][2]["id"]]
    assert stream_ids(backend, keys.OTP_LANE) == [first["results"][1]["id"]]


def test_a_key_used_for_another_message_refuses_that_item_alone(served, backend):
    post(served, keyed(SHIPPED, "o-1"))

    answer = post(served, keyed(LATE, "o-1"), keyed(CODE, "o-2"), SHIPPED)

    conflict, other, plain = answer["results"]
    assert conflict["error"]["code"] == "idempotency_conflict"
    assert conflict["error"]["field"] == "messages[0].idempotency_key"
    assert "'o-1'" in conflict["error"]["message"]
    assert other["status"] == plain["status"] == "queued"
    assert (answer["queued"], answer["refused"]) == (2, 1)
    assert backend.client.xlen(keys.message_stream(keys.TXN_LANE)) == 2  # the first SHIPPED, the plain one


def test_a_key_twice_in_one_batch_is_the_first_item_s_replay_or_a_conflict(served, backend):
    answer = post(served, keyed(SHIPPED, "o-1"), keyed(SHIPPED, "o-1"), keyed(LATE, "o-1"))

    first, replay, conflict = answer["results"]
    assert "replayed" not in first
    assert replay["id"] == first["id"] and replay["replayed"] is True
    assert conflict["error"]["code"] == "idempotency_conflict" and first["id"] in conflict["error"]["message"]
    assert stream_ids(backend, keys.TXN_LANE) == [first["id"]]


def test_keyed_and_unkeyed_items_are_queued_in_the_batch_s_order(served, backend):
    bodies = [f"Order {n}" for n in range(6)]
    items = [SHIPPED | {"body": body} for body in bodies]
    items = [keyed(item, f"o-{n}") if n % 2 else item for n, item in enumerate(items)]

    answer = post(served, *items)

    ids = [item["id"] for item in answer["results"]]
    assert len(set(ids)) == 6 and stream_ids(backend, keys.TXN_LANE) == ids
    again = post(served, *items)
    assert [item["id"] == ids[n] for n, item in enumerate(again["results"])] == [False, True] * 3
    assert backend.client.xlen(keys.message_stream(keys.TXN_LANE)) == 9  # the unkeyed ones twice


def test_a_key_is_shared_with_post_v1_messages_of_the_same_api_key(served):
    single = served.call("POST", "/v1/messages", json_body=SHIPPED, headers={"Idempotency-Key": "o-1"})

    answer = post(served, keyed(SHIPPED, "o-1"))

    assert answer["results"][0]["id"] == single.body["id"] and answer["results"][0]["replayed"] is True


@pytest.mark.parametrize(
    "key, says",
    [("k" * 256, "length <= 255"), ("", "length >= 1"), (42, "Expected `str | null`"), ("a\tb", "printable")],
)
def test_a_bad_key_refuses_its_item_alone(served, backend, key, says):
    answer = post(served, SHIPPED, keyed(CODE, key))

    good, bad = answer["results"]
    assert good["status"] == "queued"
    assert (
        bad["error"]["code"] == "invalid_request" and bad["error"]["field"] == "messages[1].idempotency_key"
    )
    assert says in bad["error"]["message"]
    assert backend.client.xlen(keys.message_stream(keys.OTP_LANE)) == 0


def test_a_batch_with_an_idempotency_key_header_is_400_telling_to_key_each_item(served, backend):
    answer = served.call("POST", BATCH, json_body={"messages": [SHIPPED]}, headers={"Idempotency-Key": "k"})

    assert answer.status == 400 and answer.body["error"]["field"] == "Idempotency-Key"
    assert '"idempotency_key"' in answer.body["error"]["message"]
    assert backend.client.xlen(keys.message_stream(keys.TXN_LANE)) == 0


def test_the_rate_counts_the_items_checked_not_those_refused(backend, make_settings):
    _, key = ApiKeyStore(backend.client).create("slow", rate=3)
    with serving(backend, make_settings("http://127.0.0.1:9")) as served:
        served.key = key
        batch = post(served, keyed(SHIPPED, "o-1"), SHIPPED | {"to": "1"}, keyed(CODE, ""), LATE)
        one_more = served.call("POST", "/v1/messages", json_body=SHIPPED)
        spent = served.call("POST", "/v1/messages", json_body=SHIPPED)

    assert (batch["queued"], batch["refused"]) == (2, 2)
    assert (one_more.status, spent.status) == (202, 429)


def test_a_batch_is_one_round_trip(served, monkeypatch):
    """Keyed and unkeyed items in one pipeline, and no other command (the key's lookup is cached)."""
    post(served, SHIPPED)  # the API key is looked up and cached
    calls: list[str] = []
    pipeline_execute = redis.asyncio.client.Pipeline.execute
    command = redis.asyncio.Redis.execute_command

    async def counted_execute(self, *args, **kwargs):
        calls.append("pipeline")
        return await pipeline_execute(self, *args, **kwargs)

    async def counted_command(self, *args, **kwargs):
        calls.append(str(args[0]))
        return await command(self, *args, **kwargs)

    monkeypatch.setattr(redis.asyncio.client.Pipeline, "execute", counted_execute)
    monkeypatch.setattr(redis.asyncio.Redis, "execute_command", counted_command)

    post(
        served, *[keyed(SHIPPED | {"body": f"Order {n}"}, f"o-{n}") if n % 2 else SHIPPED for n in range(100)]
    )

    assert calls == ["pipeline"]


def test_the_store_loads_the_script_once_redis_lost_it(backend):
    """Redis restarted without the script: NOSCRIPT, SCRIPT LOAD, the keyed items again, in order."""
    intake = MessageIntake(backend.client)
    shipped = SingleMessage(to="+919812345678", body="Shipped", sender="KLRHXA", type=MessageType.TXN)
    once = Once(key_digest("o-1"), request_digest(shipped))
    backend.client.script_flush()

    outcomes = intake.queue_batch(
        [(shipped, keys.TXN_LANE, once), (shipped, keys.TXN_LANE, None), (shipped, keys.TXN_LANE, once)], "s"
    )

    first, plain, replay = outcomes
    assert isinstance(first, QueuedOnce) and isinstance(replay, QueuedOnce) and isinstance(plain, str)
    assert (first.replayed, replay.replayed, replay.message_id) == (False, True, first.message_id)
    assert sorted(stream_ids(backend, keys.TXN_LANE)) == sorted([first.message_id, plain])


@pytest.fixture
def own_redis(tmp_path) -> Iterator[Backend]:
    """A redis-server of this test's own: INFO commandstats counts the whole server's commands."""
    if shutil.which("redis-server") is None:
        if CI:
            raise RuntimeError("CI=true needs redis-server on the PATH")
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path)
    server.start()
    client = redis.Redis.from_url(server.url)
    yield Backend("own", client, lambda: redis.asyncio.Redis.from_url(server.url), server.url)
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
def test_a_batch_costs_a_command_an_item_and_three_a_keyed_one(own_redis, make_settings):
    _, key = ApiKeyStore(own_redis.client).create("orders")
    items = [keyed(SHIPPED | {"body": f"Order {n}"}, f"o-{n}") if n % 2 else SHIPPED for n in range(1000)]
    with serving(own_redis, make_settings("http://127.0.0.1:9")) as served:
        served.key = key
        post(served, SHIPPED)  # the API key is looked up and cached

        first = commands_of(own_redis.client, lambda: post(served, *items))
        retried = commands_of(own_redis.client, lambda: post(served, *items))

    assert first == {"xadd": 1000, "evalsha": 500, "set": 500}
    assert retried == {"xadd": 1000, "evalsha": 500, "set": 500, "xdel": 500}
    assert own_redis.client.xlen(keys.message_stream(keys.TXN_LANE)) == 1 + 1000 + 500
