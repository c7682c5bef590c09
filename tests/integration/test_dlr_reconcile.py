"""Reconciliation, on fakeredis and a real Redis, against the simulator in-process: messages whose final
delivery report never came are asked for with the status query, in batches, within the account's rate
limit, and recorded as received reports would be."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter

from ops.simulator import SimulatorConfig, start_in_thread
from ops.simulator.delivery import ReportsConfig
from producer import Campaigns
from producer.control import campaign_status
from producer.publish import publish_campaign
from producer.spec import build_spec
from redis_model import delivery, keys
from redis_model.account_limit import write_limit
from redis_model.delivery import AsyncDeliveryReports
from schemas.delivery import DeliveryReport, delivery_status
from schemas.message import MessageStatus
from tests.conftest import API_KEY
from tests.integration.test_campaign_flow import wait_completed, wait_for
from tests.integration.test_delivery_flow import FINAL, reports_record
from worker.context import WorkerContext
from worker.reconcile import DeliveryPoller

# Outcomes decided within milliseconds and never sent: only the status query tells them.
SILENT = ReportsConfig(url=None, median_delay_ms=5, delay_sigma=0.5, seed=11)
# Outcomes that never take effect while a test runs: the status query says Sent.
NEVER_FINAL = ReportsConfig(url=None, median_delay_ms=3_600_000, delay_sigma=0, seed=11)
LATER_S = 3600.0  # a poll_after the workers' own pollers never reach during a test


def send_campaign(backend, broker, settings, count: int) -> str:
    spec = build_spec(settings=settings, sender="KLRHXA", type="TXN", body="Shipped", prefix="+91")
    rows = [(i + 2, f"90000{i:05d}") for i in range(count)]
    publish_campaign(spec, rows, client=backend.client, broker=broker, settings=settings)
    wait_completed(backend, spec.campaign_id)
    return spec.campaign_id


def unreported(backend) -> dict[str, float]:
    return {
        member.decode(): score
        for member, score in backend.client.zrange(keys.UNREPORTED, 0, -1, withscores=True)
    }


def decided(simulator) -> Counter:
    return Counter(FINAL[m["status"]] for m in reports_record(simulator)["messages"])


def status_queries(simulator) -> int:
    return reports_record(simulator)["summary"]["status_queries"]


def run_pollers(backend, settings, body, **options):
    """Run `body(pollers...)` on a fresh event loop with pollers on their own worker contexts."""

    async def run():
        contexts = [WorkerContext(settings, backend.async_factory) for _ in range(options.pop("count", 1))]
        try:
            return await body(*(DeliveryPoller(ctx, **options) for ctx in contexts))
        finally:
            for ctx in contexts:
                await ctx.aclose()

    return asyncio.run(run())


def test_messages_without_reports_end_with_the_counts_the_simulator_decided(
    backend, start_worker, make_settings
):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, seed=3, reports=SILENT)) as simulator:
        settings = make_settings(simulator.base_url, dlr_poll_after_s=0.2)
        broker = start_worker(settings)
        campaign_id = send_campaign(backend, broker, settings, 300)
        campaigns = Campaigns(backend.client, settings)
        ids = [campaigns.send_message(to=f"+9198123{n:05d}", body="Code", sender="KLRHXA", type="TXN").id
               for n in range(5)]  # fmt: skip
        wait_for(lambda: all(campaigns.message(i).status is MessageStatus.SUBMITTED for i in ids))
        ours = {campaigns.message(i).message_id: i for i in ids}
        outcomes = {m["message_id"]: m["status"] for m in reports_record(simulator)["messages"]}

        def all_final():
            s = campaign_status(backend.client, campaign_id)
            shown = {i: campaigns.message(i).status for i in ids}
            final = {MessageStatus.DELIVERED, MessageStatus.UNDELIVERED}
            return (
                s.delivered + s.undelivered + s.dlr_failed == 300
                and set(shown.values()) <= final
                and (s, shown)
            )

        status, shown = wait_for(lambda: not unreported(backend) and all_final(), timeout=60)

    expected = Counter(FINAL[word] for message_id, word in outcomes.items() if message_id not in ours)
    assert (status.delivered, status.undelivered, status.dlr_failed) == (
        expected["delivered"], expected["undelivered"], expected["dlr_failed"])  # fmt: skip
    assert status.delivery_pending == 0
    # The status query says DELIVERED where reports say DELIVRD: one trace for them.
    assert status.traces.get("DELIVRD") == status.delivered and "DELIVERED" not in status.traces
    for message_id, public_id in ours.items():
        word = "delivered" if outcomes[message_id] == "Delivered" else "undelivered"
        assert shown[public_id].value == word


def test_a_request_already_fully_reported_is_not_asked_for(backend, start_worker, make_settings):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, seed=3, reports=SILENT)) as simulator:
        settings = make_settings(simulator.base_url, dlr_poll_after_s=LATER_S)
        campaign_id = send_campaign(backend, start_worker(settings), settings, 50)
        messages = reports_record(simulator)["messages"]
        now = time.time()
        reports = [DeliveryReport(m["message_id"], delivery_status(m["status"]), m["status_trace"], now)
                   for m in messages]  # fmt: skip

        async def body(poller):
            await AsyncDeliveryReports(poller.ctx.store.client).record(reports)
            return await poller.poll_once(now=time.time() + LATER_S + 1)

        done = run_pollers(backend, settings, body)
        queries = status_queries(simulator)

    assert (done.requests, done.done, done.queries) == (1, 1, 0) and queries == 0
    assert unreported(backend) == {}
    assert campaign_status(backend.client, campaign_id).delivery_pending == 0


def test_ids_are_asked_for_in_batches(backend, start_worker, make_settings):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, seed=3, reports=SILENT)) as simulator:
        settings = make_settings(simulator.base_url, dlr_poll_after_s=LATER_S, chunk_size=250)
        campaign_id = send_campaign(backend, start_worker(settings), settings, 520)  # several requests
        expected = decided(simulator)

        async def body(poller):
            return await poller.poll_once(now=time.time() + LATER_S + 1)

        done = run_pollers(backend, settings, body, ids_a_query=100)
        queries = status_queries(simulator)

    # The ids of all the pass's requests are asked for together: a query holds up to 100 of them.
    assert done.requests == done.done >= 3
    assert queries == done.queries == math.ceil(520 / 100)
    status = campaign_status(backend.client, campaign_id)
    assert (
        Counter(delivered=status.delivered, undelivered=status.undelivered, dlr_failed=status.dlr_failed)
        == expected
    )


def test_a_node_already_final_is_not_asked_for_again(backend, start_worker, make_settings):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, seed=3, reports=SILENT)) as simulator:
        settings = make_settings(simulator.base_url, dlr_poll_after_s=LATER_S)
        send_campaign(backend, start_worker(settings), settings, 30)
        first = reports_record(simulator)["messages"][0]
        asked: list[str] = []

        async def body(poller):
            await AsyncDeliveryReports(poller.ctx.store.client).record(
                [DeliveryReport(first["message_id"], delivery_status(first["status"]), "", time.time())]
            )
            gateway = poller.ctx.gateway
            statuses = gateway.statuses

            async def counting(ids):
                asked.extend(ids)
                return await statuses(ids)

            gateway.statuses = counting
            return await poller.poll_once(now=time.time() + LATER_S + 1)

        done = run_pollers(backend, settings, body)

    assert done.done == 1 and len(asked) == 29 and first["message_id"] not in asked


def test_queries_keep_to_the_account_rate_limit(backend, start_worker, make_settings):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, seed=3, reports=SILENT)) as simulator:
        settings = make_settings(simulator.base_url, dlr_poll_after_s=LATER_S)
        send_campaign(backend, start_worker(settings), settings, 6)
        write_limit(backend.client, settings.sid, 5)  # a query a fifth of a second
        times: list[float] = []

        async def body(poller):
            gateway = poller.ctx.gateway
            statuses = gateway.statuses

            async def timed(ids):
                times.append(time.monotonic())
                return await statuses(ids)

            gateway.statuses = timed
            return await poller.poll_once(now=time.time() + LATER_S + 1)

        done = run_pollers(backend, settings, body, ids_a_query=1)

    assert done.queries == 6 == len(times) and done.done == 1
    # Booked a fifth of a second apart on the account's time line (a lower bound, never flaky).
    assert times[-1] - times[0] >= 5 * 0.2 * 0.9


def test_a_request_still_pending_is_asked_again_later_then_given_up(backend, start_worker, make_settings):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, seed=3, reports=NEVER_FINAL)) as simulator:
        settings = make_settings(simulator.base_url, dlr_poll_after_s=LATER_S)
        campaign_id = send_campaign(backend, start_worker(settings), settings, 10)
        (request_id,) = unreported(backend)
        submitted = delivery.decode_header(backend.client.get(keys.delivery(request_id))).submitted_at
        max_age = 10 * LATER_S

        async def body(poller):
            first = await poller.poll_once(now=submitted + LATER_S + 1)
            again_at = unreported(backend)[request_id]
            too_early = await poller.poll_once(now=again_at - 1)
            second = await poller.poll_once(now=again_at)
            last = await poller.poll_once(now=submitted + max_age)
            return first, again_at, too_early, second, last

        first, again_at, too_early, second, last = run_pollers(backend, settings, body, max_age_s=max_age)
        queries = status_queries(simulator)

    assert (first.queries, first.done, first.gave_up) == (1, 0, 0)
    assert again_at == submitted + 2 * (LATER_S + 1)  # twice its age then: the back-off doubles
    assert too_early.requests == 0 and second.queries == 1
    assert (last.queries, last.gave_up) == (1, 1) and queries == 3
    assert unreported(backend) == {}
    assert campaign_status(backend.client, campaign_id).delivery_pending == 10


def test_two_pollers_never_ask_for_one_request_at_once(backend, start_worker, make_settings):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, seed=3, reports=SILENT)) as simulator:
        settings = make_settings(simulator.base_url, dlr_poll_after_s=LATER_S, chunk_size=20)
        campaign_id = send_campaign(backend, start_worker(settings), settings, 200)  # 10 requests
        asked: list[str] = []

        async def body(*pollers):
            for poller in pollers:
                gateway = poller.ctx.gateway
                statuses = gateway.statuses

                async def counting(ids, statuses=statuses):
                    asked.extend(ids)
                    await asyncio.sleep(0.01)  # let the other poller run meanwhile
                    return await statuses(ids)

                gateway.statuses = counting
            now = time.time() + LATER_S + 1
            return await asyncio.gather(*(poller.poll_once(now=now) for poller in pollers))

        passes = run_pollers(backend, settings, body, count=2, requests_a_pass=4, ids_a_query=20)
        queries = status_queries(simulator)

    assert sorted(p.requests for p in passes) == [4, 4]
    assert len(asked) == len(set(asked)) == 160 and queries == 8
    assert len(unreported(backend)) == 2
    assert campaign_status(backend.client, campaign_id).delivery_pending == 40


def test_a_refused_key_stops_the_pass_and_puts_its_requests_back(backend, start_worker, make_settings):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, seed=3, reports=SILENT)) as simulator:
        settings = make_settings(simulator.base_url, dlr_poll_after_s=LATER_S)
        send_campaign(backend, start_worker(settings), settings, 10)
        simulator.set_faults(refuse_key=True)
        now = time.time() + LATER_S + 1

        async def body(poller):
            return await poller.poll_once(now=now)

        done = run_pollers(backend, settings, body)

    assert done.fault is not None and done.fault.code == "UNAUTHORIZED"
    assert (done.queries, done.done, done.gave_up) == (0, 0, 0)
    assert list(unreported(backend).values()) == [now + LATER_S]


def test_polling_off_indexes_nothing(backend, start_worker, make_settings):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, seed=3, reports=SILENT)) as simulator:
        settings = make_settings(simulator.base_url, dlr_poll_after_s=0)
        campaign_id = send_campaign(backend, start_worker(settings), settings, 10)
        campaigns = Campaigns(backend.client, settings)
        sent = campaigns.send_message(to="+919812300001", body="Code", sender="KLRHXA", type="TXN")
        wait_for(lambda: campaigns.message(sent.id).status is MessageStatus.SUBMITTED)

    assert unreported(backend) == {}
    assert campaign_status(backend.client, campaign_id).submitted == 10


def test_a_purged_campaigns_requests_are_not_asked_for(backend, start_worker, make_settings):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, seed=3, reports=SILENT)) as simulator:
        settings = make_settings(simulator.base_url, dlr_poll_after_s=LATER_S)
        campaign_id = send_campaign(backend, start_worker(settings), settings, 50)
        backend.client.delete(*keys.all_keys(campaign_id))  # what `campaign purge` unlinks

        async def body(poller):
            return await poller.poll_once(now=time.time() + LATER_S + 1)

        done = run_pollers(backend, settings, body)
        queries = status_queries(simulator)

    assert (done.requests, done.queries) == (1, 0) and queries == 0
    assert unreported(backend) == {}
