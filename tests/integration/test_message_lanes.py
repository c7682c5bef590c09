"""Single messages end to end, on fakeredis and on a real Redis: queued on their lanes' streams ->
the workers' consumer -> the simulator, batched, each once, each settled in its status hash."""

from __future__ import annotations

import asyncio

import pytest

from ops.simulator import SimulatorConfig, start_in_thread
from redis_model import keys, records
from redis_model.message_lanes import MessageLanes
from redis_model.suppression_list import SuppressionList
from schemas.campaign import MessageType
from schemas.message import SingleMessage
from tests.integration.test_campaign_flow import API_KEY, events_of, wait_for
from worker.context import WorkerContext
from worker.messages import MessageConsumer

SETTLED = {b"submitted", b"failed", b"unknown"}


def enqueue(client, message: SingleMessage) -> str:
    """XADD the message to its lane's stream, as the intake does; returns its id."""
    lane = keys.lane_of(message.type.value)
    entry = client.xadd(keys.message_stream(lane), {"m": records.encode_message(message)})
    return keys.message_id(lane, entry.decode())


def message(n: int, kind: str = "TXN", **fields) -> SingleMessage:
    values = {"to": f"+9190000{n:05d}", "body": f"Your order {n} shipped", "sender": f"SHOP{n % 3}"}
    return SingleMessage(type=MessageType(kind), **(values | fields))


def status_of(client, message_id: str) -> dict[bytes, bytes]:
    return client.hgetall(keys.message(message_id))


def wait_settled(client, ids, *, timeout: float = 60.0) -> dict[str, dict[bytes, bytes]]:
    def settled():
        states = {i: status_of(client, i) for i in ids}
        return states if all(s.get(b"status") in SETTLED for s in states.values()) else None

    return wait_for(settled, timeout=timeout)


def test_single_messages_go_batched_each_once_with_its_own_body_and_sender(
    backend, simulator, start_worker, make_settings
):
    messages = [message(n) for n in range(150)] + [
        message(n, "MKT", body=f"Sale {n}") for n in range(150, 300)
    ]
    ids = [enqueue(backend.client, m) for m in messages]  # queued before any worker: read in batches

    start_worker(make_settings(simulator.base_url))
    states = wait_settled(backend.client, ids)
    sent = {accepted.to: accepted for accepted in simulator.record.messages}

    assert {s[b"status"] for s in states.values()} == {b"submitted"}
    assert simulator.record.counts_by_number() == {m.to: 1 for m in messages}
    assert all((sent[m.to].body, sent[m.to].sender) == (m.body, m.sender) for m in messages)
    assert simulator.record.requests < len(messages) / 10
    assert simulator.record.max_nodes <= 1000


def test_otp_messages_go_one_to_a_request(backend, simulator, start_worker, make_settings):
    ids = [enqueue(backend.client, message(n, "OTP", body=f"Your code is {n:04d}")) for n in range(5)]

    start_worker(make_settings(simulator.base_url))
    wait_settled(backend.client, ids)

    assert simulator.record.requests == 5 and simulator.record.max_nodes == 1
    assert len({accepted.request_index for accepted in simulator.record.messages}) == 5


def test_a_settled_message_has_kaleyras_id_its_reference_and_an_expiry(
    backend, simulator, start_worker, make_settings
):
    sent = enqueue(backend.client, message(1, reference="order-1"))

    start_worker(make_settings(simulator.base_url, retention_s=3600))
    state = wait_settled(backend.client, [sent])[sent]

    assert state[b"status"] == b"submitted"
    assert state[b"message_id"].decode() == simulator.record.messages[0].message_id
    assert state[b"reference"] == b"order-1" and b"owner" not in state
    assert 0 < backend.client.ttl(keys.message(sent)) <= 3600
    assert backend.client.xlen(keys.message_stream(keys.TXN_LANE)) == 0  # the entry is gone


def test_a_refused_message_fails_with_the_gateways_code(backend, simulator, start_worker, make_settings):
    refused = enqueue(backend.client, message(1, body="x" * 4001))

    start_worker(make_settings(simulator.base_url))
    state = wait_settled(backend.client, [refused])[refused]

    assert (state[b"status"], state[b"code"]) == (b"failed", b"E401")
    assert simulator.record.messages == []


def test_a_marketing_message_to_a_suppressed_number_is_not_sent(
    backend, simulator, start_worker, make_settings
):
    settings = make_settings(simulator.base_url)
    SuppressionList(backend.client, settings.sid).add(["+919000000001"])
    listed = enqueue(backend.client, message(1, "MKT"))
    other = enqueue(backend.client, message(2, "MKT"))

    start_worker(settings)
    states = wait_settled(backend.client, [listed, other])

    assert (states[listed][b"status"], states[listed][b"code"]) == (b"failed", b"SUPPRESSED")
    assert states[other][b"status"] == b"submitted"
    assert simulator.record.counts_by_number() == {"+919000000002": 1}


def test_an_e403_burst_is_retried_and_nothing_goes_twice(backend, start_worker, make_settings):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, e403_rate=0.3, seed=7)) as simulator:
        ids = [enqueue(backend.client, message(n, body=f"Body {n}")) for n in range(400)]
        start_worker(make_settings(simulator.base_url, retry_attempts=12))
        states = wait_settled(backend.client, ids)
        record = simulator.record

    assert record.e403_injected > 0
    assert {s[b"status"] for s in states.values()} == {b"submitted"}
    assert set(record.counts_by_number().values()) == {1} and len(record.messages) == 400


def test_each_accepted_message_has_its_submitted_event(
    backend, simulator, start_worker, make_settings, event_log
):
    ids = [enqueue(backend.client, message(n, reference=f"ref{n}")) for n in range(3)]

    start_worker(make_settings(simulator.base_url))
    states = wait_settled(backend.client, ids)
    wait_for(lambda: len([e for e in events_of(event_log) if e.get("event") == "sms.submitted"]) == 3)
    events = [e for e in events_of(event_log) if e.get("event") == "sms.submitted"]

    assert {(e["message"], e["message_id"], e["reference"]) for e in events} == {
        (i, states[i][b"message_id"].decode(), f"ref{n}") for n, i in enumerate(ids)
    }
    assert {e["recipient"] for e in events} == {f"+91******{n:04d}" for n in range(3)}


def test_messages_a_dead_consumer_marked_sending_end_unknown_and_are_never_sent(
    backend, simulator, make_settings
):
    settings = make_settings(simulator.base_url)
    ids = [enqueue(backend.client, message(n)) for n in range(3)]

    async def die_after_marking(lanes: MessageLanes) -> None:
        assert len(await lanes.mark_sending(await lanes.read(keys.TXN_LANE, 10))) == 3

    _as_a_dead_consumer(backend, die_after_marking)
    states = _run_consumer_until_settled(backend, settings, ids)

    assert {(s[b"status"], s[b"code"]) for s in states.values()} == {(b"unknown", b"WORKER_LOST")}
    assert simulator.record.requests == 0


def test_messages_a_dead_consumer_read_but_never_marked_are_reclaimed_and_sent(
    backend, simulator, make_settings
):
    settings = make_settings(simulator.base_url)
    ids = [enqueue(backend.client, message(n)) for n in range(3)]

    async def die_after_reading(lanes: MessageLanes) -> None:
        assert len(await lanes.read(keys.TXN_LANE, 10)) == 3

    _as_a_dead_consumer(backend, die_after_reading)
    states = _run_consumer_until_settled(backend, settings, ids)

    assert {s[b"status"] for s in states.values()} == {b"submitted"}
    assert simulator.record.counts_by_number() == {message(n).to: 1 for n in range(3)}


def _as_a_dead_consumer(backend, steps) -> None:
    """Run `steps(lanes)` as a consumer that then vanishes, its lease 200 ms."""

    async def run() -> None:
        client = backend.async_factory()
        try:
            lanes = MessageLanes(client, consumer="dead", lease_ms=200, retention_s=60)
            await lanes.ensure_groups()
            await steps(lanes)
        finally:
            await client.aclose()

    asyncio.run(run())


def _run_consumer_until_settled(backend, settings, ids) -> dict[str, dict[bytes, bytes]]:
    """A worker process's consumer with a short lease, run until every message of `ids` is settled."""

    async def run() -> None:
        ctx = WorkerContext(settings, backend.async_factory)
        consumer = MessageConsumer(ctx, lease_ms=200)
        consumer.start()
        try:
            for _ in range(200):
                states = [await ctx.store.client.hget(keys.message(i), "status") for i in ids]
                if all(s in SETTLED for s in states):
                    return
                await asyncio.sleep(0.05)
            pytest.fail("the messages were not settled")
        finally:
            await consumer.stop()
            await ctx.aclose()

    asyncio.run(run())
    return {i: status_of(backend.client, i) for i in ids}


def test_an_entry_that_does_not_decode_fails_and_its_lane_goes_on(
    backend, simulator, start_worker, make_settings
):
    stream = keys.message_stream(keys.TXN_LANE)
    garbled = keys.message_id(keys.TXN_LANE, backend.client.xadd(stream, {"m": b"\xc1 not msgpack"}).decode())
    fieldless = keys.message_id(keys.TXN_LANE, backend.client.xadd(stream, {"x": b"1"}).decode())
    after = enqueue(backend.client, message(1))

    start_worker(make_settings(simulator.base_url))
    states = wait_settled(backend.client, [garbled, fieldless, after])

    assert [(states[i][b"status"], states[i].get(b"code")) for i in (garbled, fieldless)] == [
        (b"failed", b"UNREADABLE")
    ] * 2
    assert states[after][b"status"] == b"submitted"
    assert simulator.record.counts_by_number() == {message(1).to: 1}
    assert backend.client.xlen(stream) == 0


def test_a_message_sent_from_the_python_api_is_submitted_and_a_retry_sends_nothing_more(
    backend, simulator, start_worker, make_settings
):
    from producer import Campaigns, MessageStatus

    settings = make_settings(simulator.base_url)
    campaigns = Campaigns(backend.client, settings)
    start_worker(settings)

    sent = campaigns.send_message(
        to="+919000000007", body="Your order 7 shipped", sender="SHOP1", type="TXN",
        reference="order-7", idempotency_key="order-7-shipped",
    )  # fmt: skip
    wait_for(lambda: campaigns.message(sent.id).status == MessageStatus.SUBMITTED, timeout=30)
    again = campaigns.send_message(
        to="+919000000007", body="Your order 7 shipped", sender="SHOP1", type="TXN",
        reference="order-7", idempotency_key="order-7-shipped",
    )  # fmt: skip

    state = campaigns.message(sent.id)
    assert again.id == sent.id
    assert (state.reference, state.message_id) == ("order-7", simulator.record.messages[0].message_id)
    assert simulator.record.counts_by_number() == {"+919000000007": 1}
    assert backend.client.xlen(keys.message_stream(keys.TXN_LANE)) == 0


def test_a_message_the_gateway_still_refuses_after_the_clients_retries_is_sent_again_later(
    backend, make_settings
):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, e403_rate=1.0, seed=3)) as simulator:
        settings = make_settings(simulator.base_url, retry_attempts=1, job_max_retries=3)
        refused_once = enqueue(backend.client, message(1))

        async def run() -> None:
            ctx = WorkerContext(settings, backend.async_factory)
            consumer = MessageConsumer(ctx, lease_ms=200)  # a reclaim pass takes it again 200 ms later
            consumer.start()
            try:
                await _until(lambda: backend.client.hget(keys.message(refused_once), "attempts") == b"1")
                assert backend.client.hget(keys.message(refused_once), "status") == b"queued"  # not failed
                simulator.set_faults(e403_rate=0.0)
                await _until(lambda: status_of(backend.client, refused_once).get(b"status") in SETTLED)
            finally:
                await consumer.stop()
                await ctx.aclose()

        asyncio.run(run())

    assert status_of(backend.client, refused_once)[b"status"] == b"submitted"
    assert simulator.record.counts_by_number() == {message(1).to: 1}


def test_a_message_refused_more_times_than_a_job_may_retry_fails_with_the_code(backend, make_settings):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, e403_rate=1.0, seed=3)) as simulator:
        settings = make_settings(simulator.base_url, retry_attempts=1, job_max_retries=2)
        refused = enqueue(backend.client, message(1))
        state = _run_consumer_until_settled(backend, settings, [refused])[refused]

    assert (state[b"status"], state[b"code"], state[b"attempts"]) == (b"failed", b"E403", b"3")
    assert simulator.record.messages == [] and simulator.record.e403_injected == 3


async def _until(condition, timeout: float = 20.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    pytest.fail("timed out")


def test_a_burst_of_otp_messages_is_sent_each_once_within_the_redis_connections(
    backend, simulator, make_settings
):
    # Four reads of 100 OTP, a request each, are under way at once: each books its turn, marks and
    # settles, many more Redis commands at once than redis-py's pool of 100 connections allows. The
    # 200 ms lease of `_run_consumer_until_settled` also lets reclaim passes take over entries whose
    # batches still wait: they must be left to those batches, not sent a second time.
    ids = [enqueue(backend.client, message(n, "OTP", body=f"Your code is {n:04d}")) for n in range(400)]

    states = _run_consumer_until_settled(backend, make_settings(simulator.base_url), ids)

    assert {s[b"status"] for s in states.values()} == {b"submitted"}
    assert simulator.record.counts_by_number() == {message(n).to: 1 for n in range(400)}


def test_messages_waiting_on_the_rate_limit_past_the_lease_are_sent_once(backend, simulator, make_settings):
    from redis_model.account_limit import write_limit

    settings = make_settings(simulator.base_url)
    write_limit(backend.client, settings.sid, 100.0)  # 60 messages take about 0.6 s: three leases of 200 ms
    ids = [enqueue(backend.client, message(n)) for n in range(60)]

    states = _run_consumer_until_settled(backend, settings, ids)

    assert {s[b"status"] for s in states.values()} == {b"submitted"}
    assert simulator.record.counts_by_number() == {message(n).to: 1 for n in range(60)}


def test_a_message_already_marked_sending_is_not_marked_again_by_a_copy(backend):
    sent = enqueue(backend.client, message(1))

    async def run() -> tuple[int, int, int]:
        client = backend.async_factory()
        try:
            lanes = MessageLanes(client, consumer="one", lease_ms=60_000, retention_s=60)
            await lanes.ensure_groups()
            batch = await lanes.read(keys.TXN_LANE, 10)
            first = await lanes.mark_sending(batch)
            copy = await lanes.mark_sending(batch)  # as a reclaim pass's copy of the same entry would
            await lanes.release(batch)  # a retry's back-off gives it back: it may be marked again
            again = await lanes.mark_sending(batch)
            return len(first), len(copy), len(again)
        finally:
            await client.aclose()

    assert asyncio.run(run()) == (1, 0, 1)
    assert status_of(backend.client, sent)[b"status"] == b"sending"
