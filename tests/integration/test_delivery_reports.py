"""The delivery reports' store, on fakeredis and a real Redis: a report is counted once, in its most
final status, whatever order and however many times it comes; reports that come before their request
was settled wait for it; a campaign's counts, traces and times to delivery; a single message's."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis

from ops.simulator import SimulatorConfig, start_in_thread
from producer.control import campaign_status
from producer.publish import publish_campaign
from producer.spec import build_spec
from redis_model import delivery, keys
from redis_model.delivery import AsyncDeliveryReports, Header, Recorded
from redis_model.message_intake import MessageIntake
from redis_model.message_lanes import MessageLanes, Settled
from redis_model.outcomes import chunk_outcomes
from schemas.campaign import MessageType
from schemas.delivery import DeliveryReport, DeliveryStatus
from schemas.message import MessageStatus, SingleMessage
from tests.conftest import API_KEY
from tests.integration.test_campaign_flow import wait_completed

DELIVERED, UNDELIVERED, FAILED, SENT = (DeliveryStatus.DELIVERED, DeliveryStatus.UNDELIVERED,
                                        DeliveryStatus.FAILED, DeliveryStatus.SENT)  # fmt: skip


def record(backend, *calls: list[DeliveryReport], **options) -> list[Recorded]:
    """Each call's reports through one store, one call after another."""

    async def run():
        store = AsyncDeliveryReports(backend.async_factory(), **options)
        try:
            return [await store.record(reports) for reports in calls]
        finally:
            await store.client.aclose()

    return asyncio.run(run())


def sent_campaign(backend, start_worker, make_settings, count: int) -> tuple[str, list[str]]:
    """A campaign of `count` sent through the simulator: its id and its message ids."""
    with start_in_thread(SimulatorConfig(api_key=API_KEY, seed=2)) as simulator:
        settings = make_settings(simulator.base_url)
        broker = start_worker(settings)
        spec = build_spec(settings=settings, sender="KLRHXA", type="TXN", body="Your order", prefix="+91")
        rows = [(i + 2, f"90000{i:05d}") for i in range(count)]
        publish_campaign(spec, rows, client=backend.client, broker=broker, settings=settings)
        wait_completed(backend, spec.campaign_id)
    outcomes = [outcome for _, outcome in chunk_outcomes(backend.client, spec.campaign_id)]
    return spec.campaign_id, [i for outcome in outcomes for i in outcome.full_message_ids() if i]


def test_a_campaigns_reports_count_once_each_in_their_most_final_status(backend, start_worker, make_settings):
    campaign_id, ids = sent_campaign(backend, start_worker, make_settings, 2500)
    now = time.time()
    first, second, third = [], [], []
    for n, message_id in enumerate(ids):
        kind = n % 5
        if kind == 1:  # delivered, and the same report again
            first.append(DeliveryReport(message_id, DELIVERED, "DELIVRD", now + 3))
            third.append(DeliveryReport(message_id, DELIVERED, "DELIVRD", now + 3))
        elif kind == 2:
            first.append(DeliveryReport(message_id, UNDELIVERED, "ABSENT-SUB", now + 60))
        elif kind == 3:  # sent, then delivered
            first.append(DeliveryReport(message_id, SENT, "SENT", now + 1))
            second.append(DeliveryReport(message_id, DELIVERED, "DELIVRD", now + 40))
        elif kind == 4:  # the final one before the one it follows, then a contradicting one
            first.append(DeliveryReport(message_id, DELIVERED, "DELIVRD", now + 500))
            second.append(DeliveryReport(message_id, SENT, "SENT", now + 1))
            third.append(DeliveryReport(message_id, FAILED, "NOT-SENT", now + 600))
        # kind 0: no report at all

    done = record(backend, first, second, third)

    per_kind = {kind: sum(1 for n in range(len(ids)) if n % 5 == kind) for kind in range(5)}
    delivered = per_kind[1] + per_kind[3] + per_kind[4]
    counts = backend.client.hgetall(keys.campaign(campaign_id))
    assert int(counts[b"delivered"]) == delivered
    assert int(counts[b"undelivered"]) == per_kind[2]
    assert b"dlr_failed" not in counts
    status = campaign_status(backend.client, campaign_id)
    assert status.traces == {"DELIVRD": delivered, "ABSENT-SUB": per_kind[2]}
    assert status.delivery_pending == per_kind[0]
    # A third each took 3 s, 40 s and 500 s: buckets up to 5, 60 and 600 s
    assert (status.delivery_p50_s, status.delivery_p90_s) == (60.0, 600.0)
    times = backend.client.hgetall(keys.campaign_delivery_times(campaign_id))
    assert sum(map(int, times.values())) == delivered
    assert done[0].recorded == len(first) and done[0].early == done[0].unmatched == 0
    assert done[1].recorded == per_kind[3] and done[1].unchanged == per_kind[4]
    assert done[2].recorded == 0 and done[2].unchanged == len(third)

    async def read(message_id):
        store = AsyncDeliveryReports(backend.async_factory())
        try:
            return await store.delivery_of(message_id)
        finally:
            await store.client.aclose()

    assert asyncio.run(read(ids[0])) is None
    assert asyncio.run(read(ids[4])) == delivery.Delivery(DELIVERED, "DELIVRD", int(now + 500))
    assert asyncio.run(read(ids[2])).trace == "ABSENT-SUB"


def test_a_finished_campaigns_report_counts_expire_with_it(backend, start_worker, make_settings):
    campaign_id, ids = sent_campaign(backend, start_worker, make_settings, 10)
    record(backend, [DeliveryReport(ids[0], DELIVERED, "DELIVRD", time.time())])

    campaign_ttl = backend.client.ttl(keys.campaign(campaign_id))
    assert campaign_ttl > 0
    assert 0 < backend.client.ttl(keys.campaign_traces(campaign_id)) <= campaign_ttl
    request = delivery.split_message_id(ids[0])[0]
    assert backend.client.ttl(keys.delivery(request)) > 0


def test_reports_before_their_request_was_settled_wait_and_then_count(backend):
    now = time.time()
    early = [DeliveryReport("req-1:0", DELIVERED, "DELIVRD", now), DeliveryReport("req-1:1", SENT, "", now),
             DeliveryReport("req-1:1", UNDELIVERED, "MOB-OFF", now)]  # fmt: skip

    (kept,) = record(backend, early)
    header = Header(delivery.CAMPAIGN, int(now) - 10, "c1", 0, 0)  # what the worker's settlement writes
    backend.client.set(keys.delivery("req-1"), delivery.encode_header(header))
    backend.client.hset(keys.campaign("c1"), "state", "running")

    async def match():
        store = AsyncDeliveryReports(backend.async_factory())
        try:
            return await store.match_early(), await store.match_early()
        finally:
            await store.client.aclose()

    matched, again = asyncio.run(match())

    assert kept.early == 3
    assert matched.recorded == 2 and again == Recorded()
    assert backend.client.hgetall(keys.campaign("c1")) == {
        b"state": b"running",
        b"delivered": b"1",
        b"undelivered": b"1",
    }
    assert not backend.client.exists(keys.early_reports("req-1"))
    assert backend.client.zcard(keys.EARLY_REPORTS) == 0


def test_a_late_report_does_not_bring_a_purged_campaign_back(backend):
    header = Header(delivery.CAMPAIGN, int(time.time()), "gone", 0, 0)
    backend.client.set(keys.delivery("req-2"), delivery.encode_header(header))  # its campaign purged since

    (done,) = record(backend, [DeliveryReport("req-2:0", DELIVERED, "DELIVRD", time.time())])

    assert done.recorded == 1  # the message's own record, which expires with its request
    assert not backend.client.exists(keys.campaign("gone"), keys.campaign_traces("gone"))
    assert not backend.client.exists(keys.campaign_delivery_times("gone"))


def test_early_reports_survive_a_pass_that_fails_before_recording_them(backend):
    """A process that dies (or loses Redis) mid-pass leaves them for the next pass: the 2xx was sent."""
    record(backend, [DeliveryReport("req-3:0", DELIVERED, "DELIVRD", time.time())])
    backend.client.set(
        keys.delivery("req-3"), delivery.encode_header(Header(delivery.MESSAGES, int(time.time())))
    )

    class Failing(AsyncDeliveryReports):
        async def _store(self, reports):
            raise redis.ConnectionError("gone")

    async def run():
        client = backend.async_factory()
        with pytest.raises(redis.ConnectionError):
            await Failing(client).match_early()
        store = AsyncDeliveryReports(client)
        matched = await store.match_early()
        found = await store.delivery_of("req-3:0")
        await client.aclose()
        return matched, found

    matched, found = asyncio.run(run())

    assert matched.recorded == 1 and found is not None and found.status is DELIVERED
    assert backend.client.zcard(keys.EARLY_REPORTS) == 0


def test_early_reports_whose_request_never_comes_are_dropped_after_their_lifetime(backend):
    (kept,) = record(backend, [DeliveryReport("req-9:3", DELIVERED, "DELIVRD", time.time())])

    async def match(now):
        store = AsyncDeliveryReports(backend.async_factory(), early_lifetime_s=60)
        try:
            return await store.match_early(now=now)
        finally:
            await store.client.aclose()

    waiting = asyncio.run(match(time.time()))
    dropped = asyncio.run(match(time.time() + 61))

    assert kept.early == 1 and waiting == Recorded()
    assert dropped.unmatched == 1
    assert not backend.client.exists(keys.early_reports("req-9"))


def test_an_id_that_is_no_node_of_a_request_is_counted_unmatched(backend):
    reports = [DeliveryReport(message_id, DELIVERED) for message_id in ("plain", "r:x", "r:5000", ":1")]
    (done,) = record(backend, reports)
    assert done == Recorded(unmatched=4)


def test_a_single_messages_report_is_read_by_its_kaleyra_id(backend):
    intake = MessageIntake(backend.client)
    message = SingleMessage(to="+919812300001", body="Your code", sender="KLRHXA", type=MessageType.TXN)
    intake.queue_many([(message, keys.TXN_LANE)] * 2)

    async def run():
        client = backend.async_factory()
        lanes = MessageLanes(client, consumer="w1", lease_ms=60_000, retention_s=3600)
        await lanes.ensure_groups()
        taken = await lanes.read(keys.TXN_LANE, 10)
        await lanes.settle([Settled(one, MessageStatus.SUBMITTED, message_id=f"req-m:{n}")
                            for n, one in enumerate(taken)])  # fmt: skip
        store = AsyncDeliveryReports(client)
        done = await store.record([DeliveryReport("req-m:1", UNDELIVERED, "DND-NUMB", 1_800_000_000)])
        found = await store.delivery_of("req-m:1"), await store.delivery_of("req-m:0")
        await client.aclose()
        return done, found, [one.id for one in taken]

    done, (second, first), ours = asyncio.run(run())

    assert done.recorded == 1
    assert second == delivery.Delivery(UNDELIVERED, "DND-NUMB", 1_800_000_000) and first is None
    assert 0 < backend.client.ttl(keys.delivery("req-m")) <= 3600
    # What `message(id)` and GET /v1/messages/{id} show.
    shown = intake.state(ours[1])
    assert (shown.status, shown.trace, shown.reported_at) == (
        MessageStatus.UNDELIVERED,
        "DND-NUMB",
        1_800_000_000,
    )
    assert intake.state(ours[0]).status is MessageStatus.SUBMITTED


def test_a_settlement_run_again_keeps_the_reports_its_request_got(backend):
    intake = MessageIntake(backend.client)
    message = SingleMessage(to="+919812300002", body="Code", sender="KLRHXA", type=MessageType.TXN)
    intake.queue_many([(message, keys.TXN_LANE)])

    async def run():
        client = backend.async_factory()
        lanes = MessageLanes(client, consumer="w1", lease_ms=60_000, retention_s=3600)
        await lanes.ensure_groups()
        settled = [Settled(one, MessageStatus.SUBMITTED, message_id="req-n:0")
                   for one in await lanes.read(keys.TXN_LANE, 10)]  # fmt: skip
        await lanes.settle(settled)
        store = AsyncDeliveryReports(client)
        await store.record([DeliveryReport("req-n:0", DELIVERED, "DELIVRD", 1_800_000_000)])
        await lanes.settle(settled)  # a retry after a timeout that had gone through
        found = await store.delivery_of("req-n:0")
        await client.aclose()
        return found

    assert asyncio.run(run()) == delivery.Delivery(DELIVERED, "DELIVRD", 1_800_000_000)


def test_the_reports_of_one_turn_go_to_redis_in_one_script_call(backend):
    class Counting(AsyncDeliveryReports):
        runs = 0

        async def _run(self, matched):
            Counting.runs += 1
            return await super()._run(matched)

    async def run():
        store = Counting(backend.async_factory())
        try:
            return await asyncio.gather(
                *(store.record([DeliveryReport(f"req-t:{n}", DELIVERED)]) for n in range(50))
            )
        finally:
            await store.client.aclose()

    done = asyncio.run(run())

    assert Counting.runs == 1 and sum(r.early for r in done) == 50


def test_a_delivered_message_costs_redis_at_most_40_bytes(backend, start_worker, make_settings):
    """Issue 21's bound, beyond what the ledger keeps: the header, a record a node, the counters."""
    if backend.name != "redis":
        pytest.skip("fakeredis does not count its memory")
    campaign_id, ids = sent_campaign(backend, start_worker, make_settings, 3000)
    assert campaign_status(backend.client, campaign_id).submitted == 3000
    before = backend.client.info("memory")["used_memory"]
    record(backend, [DeliveryReport(i, DELIVERED, "DELIVRD", time.time()) for i in ids])
    after = backend.client.info("memory")["used_memory"]
    print(f"Redis bytes a delivered message: {(after - before) / len(ids):.1f}")
    assert (after - before) / len(ids) <= 40


def test_requests_that_never_settle_do_not_hold_back_the_early_reports_of_one_that_did(backend):
    now = time.time()
    foreign = [DeliveryReport(f"other-{n}:0", DELIVERED, "DELIVRD", now) for n in range(120)]
    record(backend, foreign, [DeliveryReport("ours:1", DELIVERED, "DELIVRD", now)])
    backend.client.set(keys.delivery("ours"), delivery.encode_header(Header(delivery.MESSAGES, int(now))))

    async def passes():
        store = AsyncDeliveryReports(backend.async_factory())
        try:
            return [await store.match_early(now=now + 0.5, count=100) for _ in range(3)]
        finally:
            await store.client.aclose()

    done = asyncio.run(passes())

    assert sum(one.recorded for one in done) == 1
    assert backend.client.zcard(keys.EARLY_REPORTS) == 120  # the foreign ones wait for their lifetime


def test_a_report_of_a_node_past_the_requests_last_is_unmatched(backend):
    header = Header(delivery.CAMPAIGN, int(time.time()), "c9", 0, 0, nodes=5, last_position=4)
    backend.client.set(keys.delivery("req-5"), delivery.encode_header(header))
    backend.client.hset(keys.campaign("c9"), "state", "running")

    (done,) = record(backend, [DeliveryReport("req-5:4", DELIVERED), DeliveryReport("req-5:999", DELIVERED)])

    assert (done.recorded, done.unmatched) == (1, 1)
    assert backend.client.hget(keys.campaign("c9"), "delivered") == b"1"
    assert backend.client.strlen(keys.delivery("req-5")) == delivery.HEADER_BYTES + 5 * delivery.RECORD_BYTES


def test_a_report_learnt_from_the_status_query_is_not_counted_in_the_times_to_delivery(backend):
    header = Header(delivery.CAMPAIGN, int(time.time()) - 600, "c8", 0, 0, nodes=2, last_position=1)
    backend.client.set(keys.delivery("req-6"), delivery.encode_header(header))
    backend.client.hset(keys.campaign("c8"), "state", "running")

    record(backend, [DeliveryReport("req-6:0", DELIVERED, "DELIVRD", time.time(), timed=False),
                     DeliveryReport("req-6:1", DELIVERED, "DELIVRD", time.time())])  # fmt: skip

    assert backend.client.hget(keys.campaign("c8"), "delivered") == b"2"
    assert sum(map(int, backend.client.hvals(keys.campaign_delivery_times("c8")))) == 1
