"""Acting on delivery reports, on fakeredis and a real Redis: opted-out numbers join the account's
suppression list; `campaign resend --undelivered` sends again exactly the recipients undelivered for a
temporary reason, once, and a second resend only those a newer report left undelivered."""

from __future__ import annotations

import asyncio
import time

import pytest
from structlog.testing import capture_logs

from campaign.service.app import _delivery_store
from ops.simulator import SimulatorConfig, start_in_thread
from producer import Campaigns
from producer.control import campaign_status
from producer.publish import publish_campaign
from producer.report import report_rows
from producer.resend import resend
from producer.spec import build_spec
from redis_model.delivery import AsyncDeliveryReports, Recorded, request_ids
from redis_model.suppression_list import SuppressionList
from schemas.delivery import DeliveryReport, DeliveryStatus
from schemas.errors import InputError
from schemas.masking import mask_number
from schemas.settings import Settings
from tests.conftest import API_KEY
from tests.integration.test_campaign_flow import wait_completed, wait_for
from tests.integration.test_delivery_reports import record as record_each

DELIVERED, UNDELIVERED, FAILED, SENT = (DeliveryStatus.DELIVERED, DeliveryStatus.UNDELIVERED,
                                        DeliveryStatus.FAILED, DeliveryStatus.SENT)  # fmt: skip
SID = "HXTEST0000IN"  # the tests' settings' account
NOW = time.time()


def record(backend, *calls: list[DeliveryReport], **options) -> list[Recorded]:
    """Each call's reports through one store (opted-out numbers suppressed in SID's list unless told)."""
    return record_each(backend, *calls, **{"suppress_opt_outs_of": SID} | options)


def publish(backend, broker, settings, count: int, type: str = "TXN") -> str:
    spec = build_spec(settings=settings, sender="KLRHXA", type=type, body="Your order", prefix="+91")
    rows = [(i + 2, f"90000{i:05d}") for i in range(count)]
    publish_campaign(spec, rows, client=backend.client, broker=broker, settings=settings)
    wait_completed(backend, spec.campaign_id)
    return spec.campaign_id


def sent_ids(backend, campaign_id: str) -> dict[str, str]:
    """Number (E.164) -> its last message id, from the report."""
    rows = report_rows(backend.client, campaign_id, full_numbers=True)
    return {row.number: row.message_id for row in rows if row.message_id}


def sent_campaign(backend, start_worker, make_settings, count: int) -> tuple[str, dict[str, str]]:
    with start_in_thread(SimulatorConfig(api_key=API_KEY, seed=2)) as simulator:
        settings = make_settings(simulator.base_url, chunk_size=10)
        campaign_id = publish(backend, start_worker(settings), settings, count)
    return campaign_id, sent_ids(backend, campaign_id)


def suppressed(backend) -> set[str]:
    return set(SuppressionList(backend.client, SID).numbers())


OPT_OUTS = ("OPT-OUT", "CON-DND", "DND-NUMB", "NOT-OPTIN")


def test_opt_out_traces_suppress_exactly_those_numbers(backend, start_worker, make_settings):
    campaign_id, ids = sent_campaign(backend, start_worker, make_settings, 30)
    numbers = sorted(ids)
    opted = numbers[:4]
    reports = [DeliveryReport(ids[n], FAILED if i % 2 else UNDELIVERED, trace, NOW)
               for i, (n, trace) in enumerate(zip(opted, OPT_OUTS, strict=True))]  # fmt: skip
    reports += [
        DeliveryReport(ids[numbers[4]], SENT, "OPT-OUT", NOW),  # not final: nothing yet
        DeliveryReport(ids[numbers[5]], UNDELIVERED, "ABSENT-SUB", NOW),
        DeliveryReport(ids[numbers[6]], UNDELIVERED, "INVALID-SUB", NOW),
        *(DeliveryReport(ids[n], DELIVERED, "DELIVRD", NOW) for n in numbers[7:]),
    ]

    with capture_logs() as logs:
        (done,) = record(backend, reports)

    assert suppressed(backend) == set(opted)
    assert done.suppressed == 4 and done.recorded == len(reports)
    events = [log for log in logs if log["event"] == "dlr.suppressed"]
    assert sorted(event["number"] for event in events) == sorted(map(mask_number, opted))
    assert {event["campaign_id"] for event in events} == {campaign_id}
    assert SuppressionList(backend.client, SID).state().current  # the list this created is marked


def test_a_duplicate_opt_out_report_changes_nothing(backend, start_worker, make_settings):
    _, ids = sent_campaign(backend, start_worker, make_settings, 10)
    number = sorted(ids)[0]
    report = DeliveryReport(ids[number], FAILED, "OPT-OUT", NOW)
    record(backend, [report])
    SuppressionList(backend.client, SID).remove([number])  # taken off the list by hand since

    with capture_logs() as logs:
        again, later = record(backend, [report], [DeliveryReport(ids[number], FAILED, "DND-NUMB", NOW + 5)])

    assert again.suppressed == later.suppressed == 0 and again.unchanged == later.unchanged == 1
    assert suppressed(backend) == set()
    assert not [log for log in logs if log["event"] == "dlr.suppressed"]


def test_an_opt_out_that_came_early_is_suppressed_once_its_request_is_settled(
    backend, start_worker, make_settings
):
    """Reports matched by `match_early` act as received ones do."""
    _, ids = sent_campaign(backend, start_worker, make_settings, 10)
    number = sorted(ids)[3]

    async def run():
        store = AsyncDeliveryReports(backend.async_factory(), suppress_opt_outs_of=SID)
        try:
            # Forget the request's header, as a string not written yet would be.
            request_id = ids[number].rpartition(":")[0]
            raw = await store.client.get(f"dlr:{request_id}")
            await store.client.delete(f"dlr:{request_id}")
            early = await store.record([DeliveryReport(ids[number], FAILED, "NOT-OPTIN", NOW)])
            await store.client.set(f"dlr:{request_id}", raw)
            return early, await store.match_early()
        finally:
            await store.client.aclose()

    early, matched = asyncio.run(run())

    assert early.early == 1 and early.suppressed == 0
    assert matched.suppressed == 1 and suppressed(backend) == {number}


def test_with_the_setting_off_no_number_is_suppressed(backend, start_worker, make_settings):
    _, ids = sent_campaign(backend, start_worker, make_settings, 10)
    reports = [DeliveryReport(message_id, FAILED, "OPT-OUT", NOW) for message_id in ids.values()]
    off = Settings.from_environ({"CAMPAIGN_DLR_SUPPRESS": "0", "KALEYRA_SID": SID})
    assert not off.dlr_suppress and Settings.from_environ({}).dlr_suppress

    async def run():
        store = _delivery_store(off)(backend.async_factory())  # as `campaign serve` builds it
        try:
            return await store.record(reports)
        finally:
            await store.client.aclose()  # type: ignore[attr-defined]

    done = asyncio.run(run())

    assert done.recorded == len(reports) and done.suppressed == 0
    assert suppressed(backend) == set()


TEMPORARY = ("ABSENT-SUB", "MOB-OFF", "HANDSET-BUSY", "NET-ERR", "EXPIRED")


def test_resend_undelivered_sends_again_exactly_the_temporary_ones_once(backend, start_worker, make_settings):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, seed=2)) as simulator:
        settings = make_settings(simulator.base_url, chunk_size=10)
        broker = start_worker(settings)
        campaign_id = publish(backend, broker, settings, 40, type="MKT")
        ids = sent_ids(backend, campaign_id)
        numbers = sorted(ids)
        temporary = numbers[0:10]  # two of each temporary trace
        listed_since = numbers[9]  # temporary, but on the suppression list now: never sent again
        opted, dead, delivered = numbers[10:14], numbers[14:17], numbers[17:30]
        failed_temporary, sent_only = numbers[30], numbers[31]  # and no report at all for the rest
        reports = [
            DeliveryReport(ids[n], UNDELIVERED, TEMPORARY[i % 5], NOW) for i, n in enumerate(temporary)
        ]
        reports += [DeliveryReport(ids[n], FAILED, OPT_OUTS[i], NOW) for i, n in enumerate(opted)]
        reports += [DeliveryReport(ids[n], UNDELIVERED, "INVALID-SUB", NOW) for n in dead]
        reports += [DeliveryReport(ids[n], DELIVERED, "DELIVRD", NOW) for n in delivered]
        reports += [DeliveryReport(ids[failed_temporary], FAILED, "MOB-OFF", NOW),
                    DeliveryReport(ids[sent_only], SENT, "ABSENT-SUB", NOW)]  # fmt: skip
        (done,) = record(backend, reports)
        SuppressionList(backend.client, SID).add([listed_since])
        before = campaign_status(backend.client, campaign_id)

        result = resend(
            backend.client, broker, settings, campaign_id, failed=False, unknown=False, undelivered=True
        )
        status = wait_completed(backend, campaign_id)
        second = resend(
            backend.client, broker, settings, campaign_id, failed=False, unknown=False, undelivered=True
        )
        wait_completed(backend, campaign_id)
        sent = simulator.record.counts_by_number()

    resent = set(temporary) - {listed_since}
    assert done.suppressed == 4 and suppressed(backend) == {*opted, listed_since}
    assert (result.republished, result.undelivered, result.suppressed, result.jobs) == (9, 9, 1, 1)
    assert {number for number, count in sent.items() if count > 1} == resent
    assert set(sent.values()) == {1, 2} and len(sent) == 40
    # The resent ones count by their new message: submitted again, their old reports no longer counted.
    assert (status.state, status.submitted, status.pending) == ("completed", 40, 0)
    assert (status.resent_undelivered, status.republished) == (9, 0)
    assert status.undelivered == before.undelivered - 9
    assert status.delivery_pending == before.delivery_pending + 9
    # left: the one listed since, and the failed one with a temporary trace
    assert sum(status.traces.get(trace, 0) for trace in TEMPORARY) == 2
    rows = list(report_rows(backend.client, campaign_id, full_numbers=True))
    assert sorted(row.number for row in rows) == numbers  # each once, where it was sent last
    assert all(row.message_id != ids[row.number] for row in rows if row.number in resent)
    assert (second.republished, second.jobs) == (0, 0)


def test_a_second_resend_sends_only_those_a_newer_report_left_undelivered(
    backend, start_worker, make_settings
):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, seed=2)) as simulator:
        settings = make_settings(simulator.base_url, chunk_size=10)
        broker = start_worker(settings)
        campaign_id = publish(backend, broker, settings, 20)
        ids = sent_ids(backend, campaign_id)
        numbers = sorted(ids)
        record(backend, [DeliveryReport(ids[n], UNDELIVERED, "MOB-OFF", NOW) for n in numbers[:5]])
        first = resend(
            backend.client, broker, settings, campaign_id, failed=False, unknown=False, undelivered=True
        )
        wait_completed(backend, campaign_id)
        again = sent_ids(backend, campaign_id)
        # The new message of one of them is undelivered again, another's delivered; a recipient never
        # reported on before is undelivered now.
        record(backend, [DeliveryReport(again[numbers[0]], UNDELIVERED, "ABSENT-SUB", NOW + 60),
                         DeliveryReport(again[numbers[1]], DELIVERED, "DELIVRD", NOW + 60),
                         DeliveryReport(ids[numbers[10]], UNDELIVERED, "NET-ERR", NOW + 60)])  # fmt: skip
        second = resend(
            backend.client, broker, settings, campaign_id, failed=False, unknown=False, undelivered=True
        )
        status = wait_completed(backend, campaign_id)
        sent = simulator.record.counts_by_number()

    assert (first.republished, second.republished) == (5, 2)
    expected = {numbers[0]: 3, **dict.fromkeys(numbers[1:5], 2), numbers[10]: 2}
    assert {n: c for n, c in sent.items() if c > 1} == expected
    assert (status.resent_undelivered, status.submitted, status.pending) == (7, 20, 0)


def test_resend_undelivered_is_not_combined_with_failed(backend, make_settings):
    settings = make_settings("http://127.0.0.1:9")
    with pytest.raises(InputError, match="--undelivered is a resend of its own"):
        resend(backend.client, None, settings, "0" * 32, failed=True, unknown=False, undelivered=True)  # type: ignore[arg-type]


def test_a_single_message_s_opt_out_suppresses_its_number_and_only_its(backend, start_worker, make_settings):
    """Single messages go many to a request: each node's number is kept with the request's reports."""
    with start_in_thread(SimulatorConfig(api_key=API_KEY, seed=2)) as simulator:
        settings = make_settings(simulator.base_url, dlr_poll_after_s=0, message_linger_ms=200)
        start_worker(settings)
        campaigns = Campaigns(backend.client, settings)
        sent = {f"+9198765000{i:02d}": campaigns.send_message(to=f"+9198765000{i:02d}", body="Your order",
                                                               sender="KLRHXA", type="TXN").id
                for i in range(6)}  # fmt: skip
        wait_for(lambda: all(campaigns.message(i).status == "submitted" for i in sent.values()))
    kaleyra = {number: campaigns.message(i).message_id for number, i in sent.items()}
    assert len({request_ids([m])[0] for m in kaleyra.values()}) < len(kaleyra)  # some share a request
    opted, other = sorted(kaleyra)[1], sorted(kaleyra)[2]

    with capture_logs() as logs:
        (done,) = record(backend, [DeliveryReport(kaleyra[opted], UNDELIVERED, "OPT-OUT", NOW),
                                   DeliveryReport(kaleyra[other], DELIVERED, "DELIVRD", NOW)])  # fmt: skip

    assert suppressed(backend) == {opted} and done.suppressed == 1
    [event] = [log for log in logs if log["event"] == "dlr.suppressed"]
    assert event["number"] == mask_number(opted) and event["message_id"] == kaleyra[opted]
    assert campaigns.message(sent[opted]).status == "undelivered"
