"""Callbacks to the producer, on fakeredis and a real Redis, to a real HTTP receiver: a single message's
end and then its final delivery report, a campaign's end and its messages' final reports, each POSTed
signed; a receiver that fails is retried with back-off until it answers or the attempts run out, and the
attempts show in the message's and the campaign's status; a report that comes twice is told once."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import pytest
from aiohttp import web

from ops.simulator import SimulatorConfig, start_in_thread
from producer import Campaigns
from producer.control import campaign_status, purge
from producer.publish import publish_campaign
from producer.resend import resend
from producer.spec import build_spec
from redis_model import keys, records
from redis_model.api_keys import ApiKeyStore
from redis_model.callbacks import OUTBOX, AsyncCallbackOutbox
from redis_model.delivery import AsyncDeliveryReports
from schemas.callback import CALLBACK_ID_HEADER, SIGNATURE_HEADER, verify_signature
from schemas.delivery import DeliveryReport, DeliveryStatus
from schemas.errors import SpecError
from tests.conftest import API_KEY
from tests.integration.http_served import serving, serving_app
from tests.integration.test_campaign_flow import wait_completed, wait_for
from tests.integration.test_dlr_actions import sent_ids
from worker.broker import build_broker
from worker.callbacks import CAMPAIGN_GONE, CallbackSender
from worker.context import WorkerContext
from worker.logging import flush_events

ROOT = Path(__file__).resolve().parents[2]
SECRET = "callback-test-secret-0123456789"
ORDER = {"to": "+919812345678", "body": "Your order shipped", "sender": "KLRHXA", "type": "TXN"}


@dataclass
class Posted:
    headers: dict[str, str]
    body: bytes

    @property
    def events(self) -> list[dict]:
        return msgspec.json.decode(self.body)["events"]


@dataclass
class Receiver:
    """A producer's endpoint: records every POST; answers `failing` (an HTTP status) to the first
    `failures` of them, 200 after."""

    url: str
    posted: list[Posted] = field(default_factory=list)
    failures: int = 0
    failing: int = 500

    def wait(self, count: int) -> list[Posted]:
        wait_for(lambda: len(self.posted) >= count, timeout=30)
        return self.posted


@contextmanager
def receiving(*, failures: int = 0, failing: int = 500) -> Iterator[Receiver]:
    receiver = Receiver("", failures=failures, failing=failing)

    async def hook(request: web.Request) -> web.Response:
        receiver.posted.append(Posted(dict(request.headers), await request.read()))
        if receiver.failures > 0:
            receiver.failures -= 1
            return web.Response(status=receiver.failing)
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    with serving_app(app) as port:
        receiver.url = f"http://127.0.0.1:{port}/hook?token=t0k3n"
        yield receiver


def signed(posted: Posted) -> bool:
    return verify_signature(SECRET, posted.headers[SIGNATURE_HEADER], posted.body)


def record(backend, reports: list[DeliveryReport]) -> None:
    async def run():
        store = AsyncDeliveryReports(backend.async_factory())
        try:
            await store.record(reports)
        finally:
            await store.client.aclose()

    asyncio.run(run())


def send_passes(backend, settings, *times: float, **options) -> list:
    """A sender of our own (no worker's), one pass at each of `times`: what each did."""

    async def run():
        ctx = WorkerContext(settings, backend.async_factory)
        sender = CallbackSender(ctx, **options)
        try:
            return [await sender.send_once(now=at) for at in times]
        finally:
            await sender.stop()
            await ctx.aclose()

    return asyncio.run(run())


def test_a_message_s_end_then_its_delivery_are_posted_signed_once_each(backend, start_worker, make_settings):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, seed=3)) as simulator, receiving() as receiver:
        settings = make_settings(
            simulator.base_url, callback_secret=SECRET, dlr_poll_after_s=0, callback_private=True
        )
        start_worker(settings)
        campaigns = Campaigns(backend.client, settings)
        receipt = campaigns.send_message(**ORDER, reference="order-7", callback_url=receiver.url)
        [ended] = receiver.wait(1)
        state = campaigns.message(receipt.id)
        assert signed(ended) and ended.headers["Content-Type"] == "application/json"
        assert ended.events == [
            {"event": "message.status", "status": "submitted", "at": ended.events[0]["at"], "id": receipt.id,
             "reference": "order-7", "message_id": state.message_id}
        ]  # fmt: skip
        assert state.message_id is not None

        report = DeliveryReport(state.message_id, DeliveryStatus.DELIVERED, "DELIVRD", 1_765_000_000.0)
        record(backend, [report])
        record(backend, [report])  # the same report again: told once
        _, delivered = receiver.wait(2)
        assert signed(delivered)
        assert delivered.events == [
            {"event": "message.status", "status": "delivered", "at": 1_765_000_000, "id": receipt.id,
             "reference": "order-7", "message_id": state.message_id, "trace": "DELIVRD"}
        ]  # fmt: skip
        assert delivered.headers[CALLBACK_ID_HEADER] != ended.headers[CALLBACK_ID_HEADER]
        wait_for(lambda: campaigns.message(receipt.id).callbacks.sent == 2)
        seen = campaigns.message(receipt.id)
        assert seen.status == "delivered"
        assert msgspec.structs.asdict(seen.callbacks) | {"last_attempt_at": None} == {
            "made": 2, "sent": 2, "failed": 0, "pending": 0, "attempts": 2, "last_attempt_at": None,
            "last_error": None,
        }  # fmt: skip
        assert len(receiver.posted) == 2 and backend.client.hlen(keys.CALLBACKS) == 0


def test_a_failing_receiver_is_retried_with_doubling_back_off_and_the_attempts_show(
    backend, start_worker, make_settings
):
    with (
        start_in_thread(SimulatorConfig(api_key=API_KEY, seed=3)) as simulator,
        receiving(failures=2) as receiver,
    ):
        quiet = make_settings(simulator.base_url, dlr_poll_after_s=0)  # no secret: its sender sends nothing
        start_worker(quiet)
        campaigns = Campaigns(backend.client, quiet)
        receipt = campaigns.send_message(**ORDER, callback_url=receiver.url)
        wait_for(lambda: campaigns.message(receipt.id).status == "submitted")
        assert campaigns.message(receipt.id).callbacks.pending == 1 and not receiver.posted

        signing = make_settings(simulator.base_url, callback_secret=SECRET, callback_private=True)
        start = time.time()
        [first] = send_passes(backend, signing, start)
        [callback_id] = [member.decode() for member in backend.client.zrange(keys.CALLBACKS_DUE, 0, -1)]
        due = backend.client.zscore(keys.CALLBACKS_DUE, callback_id)
        assert first.retried == 1 and 5 * 0.8 <= due - start <= 5 + 1  # 5 s, less a fifth of jitter at most
        early, second = send_passes(backend, signing, start + 1, due)
        assert early.claimed == 0 and second.retried == 1
        due = backend.client.zscore(keys.CALLBACKS_DUE, callback_id)
        assert 10 * 0.8 <= due - time.time() <= 10 + 1  # doubled
        [third] = send_passes(backend, signing, due)
        assert third.sent == 1

        assert [p.body for p in receiver.posted] == [receiver.posted[0].body] * 3
        assert {p.headers[CALLBACK_ID_HEADER] for p in receiver.posted} == {callback_id}
        assert msgspec.json.decode(receiver.posted[0].body)["id"] == callback_id  # signed with the events
        assert all(signed(p) for p in receiver.posted)
        shown = campaigns.message(receipt.id).callbacks
        assert (shown.made, shown.sent, shown.failed, shown.pending, shown.attempts) == (1, 1, 0, 0, 3)
        assert shown.last_error == "HTTP 500" and shown.last_attempt_at is not None
        assert backend.client.hlen(keys.CALLBACKS) == 0 and backend.client.zcard(keys.CALLBACKS_DUE) == 0


def test_a_callback_is_given_up_after_its_last_attempt_and_counted_failed(
    backend, start_worker, make_settings
):
    with (
        start_in_thread(SimulatorConfig(api_key=API_KEY, seed=3)) as simulator,
        receiving(failures=9) as receiver,
    ):
        quiet = make_settings(simulator.base_url, dlr_poll_after_s=0)
        start_worker(quiet)
        campaigns = Campaigns(backend.client, quiet)
        refused = campaigns.send_message(**ORDER, callback_url=receiver.url)
        unreachable = campaigns.send_message(**ORDER, callback_url="http://127.0.0.1:9/closed")
        wait_for(lambda: all(campaigns.message(r.id).status == "submitted" for r in (refused, unreachable)))

        signing = make_settings(simulator.base_url, callback_secret=SECRET, callback_private=True)
        passes = send_passes(backend, signing, time.time(), time.time() + 3600, max_attempts=2)
        assert [(p.retried, p.failed) for p in passes] == [(2, 0), (0, 2)]
        gave_up = campaigns.message(refused.id).callbacks
        assert (gave_up.made, gave_up.sent, gave_up.failed, gave_up.pending, gave_up.attempts) == (
            1,
            0,
            1,
            0,
            2,
        )
        assert gave_up.last_error == "HTTP 500"
        assert campaigns.message(unreachable.id).callbacks.last_error == "could not connect"
        assert backend.client.hlen(keys.CALLBACKS) == 0


def test_a_campaign_s_end_and_its_messages_final_reports_are_posted(backend, start_worker, make_settings):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, seed=3)) as simulator, receiving() as receiver:
        settings = make_settings(
            simulator.base_url,
            chunk_size=10,
            callback_secret=SECRET,
            dlr_poll_after_s=0,
            callback_private=True,
        )
        broker = start_worker(settings)
        spec = build_spec(settings=settings, sender="KLRHXA", type="TXN", body="Hi", prefix="+91",
                          callback_url=receiver.url)  # fmt: skip
        rows = [(i + 2, f"90000{i:05d}") for i in range(30)]
        publish_campaign(spec, rows, client=backend.client, broker=broker, settings=settings)
        status = wait_completed(backend, spec.campaign_id)
        [ended] = receiver.wait(1)
        assert signed(ended)
        assert ended.events == [
            {"event": "campaign.status", "campaign_id": spec.campaign_id, "state": "completed",
             "at": ended.events[0]["at"], "total": 30, "submitted": status.submitted, "failed": status.failed,
             "unknown": 0, "cancelled": 0}
        ]  # fmt: skip
        assert (
            abs(ended.events[0]["at"] - campaign_status(backend.client, spec.campaign_id).finished_at) < 0.01
        )

        ids = sorted(sent_ids(backend, spec.campaign_id).values())
        reports = [DeliveryReport(i, DeliveryStatus.DELIVERED, "DELIVRD", 1_765_000_000.0) for i in ids[:20]]
        reports += [
            DeliveryReport(i, DeliveryStatus.UNDELIVERED, "ABSENT-SUB", 1_765_000_000.0) for i in ids[20:]
        ]
        reports += [DeliveryReport(ids[0], DeliveryStatus.SENT, "", 1_765_000_000.0)]  # not final: not told
        record(backend, reports)
        _, told = receiver.wait(2)
        assert signed(told)
        assert sorted((e["message_id"], e["status"], e["trace"]) for e in told.events) == sorted(
            (r.message_id, r.status.word, r.trace) for r in reports[:30]
        )
        assert {e["campaign_id"] for e in told.events} == {spec.campaign_id}
        wait_for(lambda: campaign_status(backend.client, spec.campaign_id).callbacks.sent == 2)
        shown = campaign_status(backend.client, spec.campaign_id).callbacks
        assert (shown.made, shown.failed, shown.pending, shown.attempts) == (2, 0, 0, 2)
        assert backend.client.zcard(keys.CALLBACK_CAMPAIGNS) == 0  # told once, no longer watched

        # Resent, its ten undelivered go again, and its end is told again.
        resend(
            backend.client, broker, settings, spec.campaign_id, failed=False, unknown=False, undelivered=True
        )
        wait_completed(backend, spec.campaign_id)
        *_, again = receiver.wait(3)
        assert [(e["event"], e["state"], e["submitted"]) for e in again.events] == [
            ("campaign.status", "completed", 30)
        ]


def test_no_secret_no_credentials_and_no_stray_urls(backend, make_settings):
    settings = make_settings("http://127.0.0.1:9", callback_secret=SECRET)
    assert SECRET not in repr(settings) and SECRET not in str(settings)
    campaigns = Campaigns(backend.client, settings)
    for url, reason in [
        ("ftp://example.com/hook", "must be an http:// or https:// URL"),
        ("https://user:pw@example.com/hook", "must not hold credentials"),
        ("https:///hook", "must be an http:// or https:// URL"),
        ("https://example.com:99999/hook", "is not a URL"),
        ("https://example.com/a b", "no spaces"),
    ]:
        with pytest.raises(SpecError, match=reason):
            campaigns.send_message(**ORDER, callback_url=url)
        with pytest.raises(SpecError, match=reason):
            build_spec(settings=settings, sender="KLRHXA", type="TXN", body="Hi", callback_url=url)
    assert backend.client.dbsize() == 0  # nothing queued


def test_the_http_intake_takes_a_callback_url_and_refuses_a_bad_one_naming_it(backend, make_settings):
    _, key = ApiKeyStore(backend.client).create("orders")
    with serving(backend, make_settings("http://127.0.0.1:9")) as served:
        served.key = key
        bad = served.call("POST", "/v1/messages", json_body=ORDER | {"callback_url": "ftp://example.com/x"})
        assert bad.status == 400 and "ftp://example.com/x" in bad.body["error"]["message"]
        good = served.call(
            "POST", "/v1/messages", json_body=ORDER | {"callback_url": "https://example.com/x"}
        )
        assert good.status == 202
        batch = served.call(
            "POST",
            "/v1/messages/batch",
            json_body={
                "messages": [
                    ORDER | {"callback_url": "https://example.com/y"},
                    ORDER | {"callback_url": "mailto:x@example.com"},
                ]
            },
        )
        assert batch.status == 202
        assert [item.get("error", {}).get("code") for item in batch.body["results"]] == [
            None,
            "invalid_request",
        ]
    queued = [records.decode_message(fields[b"m"]).callback_url
              for _, fields in backend.client.xrange(keys.message_stream(keys.TXN_LANE))]  # fmt: skip
    assert queued == ["https://example.com/x", "https://example.com/y"]


def test_the_example_receiver_takes_signed_callbacks_and_refuses_others(backend, start_worker, make_settings):
    port = free_port()
    env = os.environ | {"CAMPAIGN_CALLBACK_SECRET": SECRET}
    command = [sys.executable, "examples/callback_receiver.py", str(port)]
    receiver = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(lambda: listening(port), timeout=20)
        forged = http_post(port, b'{"events": []}', {SIGNATURE_HEADER: "t=1,v1=00", CALLBACK_ID_HEADER: "1"})
        assert forged == 401
        with start_in_thread(SimulatorConfig(api_key=API_KEY, seed=3)) as simulator:
            settings = make_settings(
                simulator.base_url, callback_secret=SECRET, dlr_poll_after_s=0, callback_private=True
            )
            start_worker(settings)
            campaigns = Campaigns(backend.client, settings)
            receipt = campaigns.send_message(**ORDER, callback_url=f"http://127.0.0.1:{port}/callbacks")
            wait_for(lambda: (told := campaigns.message(receipt.id).callbacks) is not None and told.sent == 1)
    finally:
        receiver.terminate()
        out, err = receiver.communicate(timeout=10)
    assert "Traceback" not in err
    [printed] = [json.loads(line) for line in out.splitlines()]
    assert (printed["id"], printed["status"]) == (receipt.id, "submitted")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def http_post(port: int, body: bytes, headers: dict[str, str]) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", "/callbacks", body=body, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def test_a_callback_to_a_private_address_is_refused_at_once_unless_allowed(
    backend, start_worker, make_settings
):
    """Any key holder names the URL: the workers' own network (Redis, a metadata service) is off limits."""
    with start_in_thread(SimulatorConfig(api_key=API_KEY, seed=3)) as simulator, receiving() as receiver:
        quiet = make_settings(simulator.base_url, dlr_poll_after_s=0)
        start_worker(quiet)
        campaigns = Campaigns(backend.client, quiet)
        local = campaigns.send_message(**ORDER, callback_url=receiver.url)
        metadata = campaigns.send_message(**ORDER, callback_url="http://169.254.169.254/latest/meta-data")
        wait_for(lambda: all(campaigns.message(r.id).status == "submitted" for r in (local, metadata)))

        [public_only] = send_passes(
            backend, make_settings(simulator.base_url, callback_secret=SECRET), time.time()
        )
        assert public_only.failed == 2 and not receiver.posted
        assert campaigns.message(local.id).callbacks.last_error == (
            "refused: 127.0.0.1 is not a public address (CAMPAIGN_CALLBACK_PRIVATE=1 allows it)"
        )
        assert campaigns.message(metadata.id).callbacks.failed == 1


def test_a_finished_campaign_read_by_two_senders_at_once_is_told_once(backend, make_settings):
    """Both read the watch before either told it: the script looks again before it tells."""
    settings = make_settings("http://127.0.0.1:9")
    spec = build_spec(settings=settings, sender="KLRHXA", type="TXN", body="Hi", prefix="+91",
                      callback_url="https://hooks.example.com/x")  # fmt: skip
    publish_campaign(
        spec,
        [(2, "9000000001")],
        client=backend.client,
        broker=build_broker(settings, backend.client),
        settings=settings,
    )
    backend.client.hset(keys.campaign(spec.campaign_id), mapping={"state": "completed", "finished_at": 1.0})

    async def two_passes():
        client = backend.async_factory()
        outbox = AsyncCallbackOutbox(client)
        try:
            now = time.time()
            read = [spec.campaign_id]  # what each sender read from the watch before running the script
            call = {"keys": [keys.CALLBACK_CAMPAIGNS, *OUTBOX, keys.campaign(spec.campaign_id)],
                    "args": [now, now + 2, *read]}  # fmt: skip
            return [await outbox._tell_finished(**call), await outbox._tell_finished(**call)]
        finally:
            await client.aclose()

    assert asyncio.run(two_passes()) == [1, 0]
    assert backend.client.hlen(keys.CALLBACKS) == 1


def test_the_callbacks_of_a_purged_campaign_are_dropped_unsent(backend, make_settings, event_log):
    with receiving() as receiver:
        settings = make_settings("http://127.0.0.1:9", callback_secret=SECRET, callback_private=True)
        spec = build_spec(settings=settings, sender="KLRHXA", type="TXN", body="Hi", prefix="+91",
                          callback_url=receiver.url)  # fmt: skip
        client = backend.client
        publish_campaign(spec, [(2, "9000000001")], client=client, broker=build_broker(settings, client),
                         settings=settings)  # fmt: skip
        client.hset(
            keys.campaign(spec.campaign_id),
            mapping={"state": "completed", "cancelled": 1, "finished_at": 1.0},
        )

        async def tell() -> int:
            outbox = AsyncCallbackOutbox(backend.async_factory())
            try:
                return await outbox.tell_finished_campaigns()
            finally:
                await outbox.client.aclose()

        assert asyncio.run(tell()) == 1  # its end in the outbox, not sent yet
        purge(client, spec.campaign_id)

        [done] = send_passes(backend, settings, time.time())

    assert (done.claimed, done.sent, receiver.posted) == (0, 0, [])
    assert client.hlen(keys.CALLBACKS) == 0 and client.zcard(keys.CALLBACKS_DUE) == 0
    flush_events()
    events = [json.loads(line) for line in event_log.read_text().splitlines()]
    assert [e["reason"] for e in events if e["event"] == "callback.dropped"] == [CAMPAIGN_GONE]


def test_a_receiver_that_does_not_answer_costs_the_others_one_timeout(backend, start_worker, make_settings):
    """Its callbacks of a pass go four at a time; once one times out, the rest fail the same way at once
    (an attempt counted), and the other receivers' callbacks are sent in the same pass."""
    with (
        start_in_thread(SimulatorConfig(api_key=API_KEY, seed=3)) as simulator,
        receiving() as receiver,
        socket.socket() as silent,  # listens, never accepts: a connection opens and nothing answers
    ):
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        silent_url = f"http://localhost:{silent.getsockname()[1]}/hook"
        quiet = make_settings(simulator.base_url, dlr_poll_after_s=0)
        start_worker(quiet)
        campaigns = Campaigns(backend.client, quiet)
        dead = [campaigns.send_message(**ORDER, callback_url=silent_url).id for _ in range(12)]
        alive = [campaigns.send_message(**ORDER, callback_url=receiver.url).id for _ in range(3)]
        wait_for(lambda: all(campaigns.message(i).status == "submitted" for i in dead + alive))

        signing = make_settings(simulator.base_url, callback_secret=SECRET, callback_private=True)
        [done] = send_passes(backend, signing, time.time(), timeout_s=0.5)

        silent.setblocking(False)
        connected = 0
        with contextlib.suppress(BlockingIOError):
            while True:
                silent.accept()[0].close()
                connected += 1

    assert (done.claimed, done.sent, done.retried) == (15, 3, 12) and len(receiver.posted) == 3
    assert connected <= 4  # the first ones, at once; the rest were not tried
    assert {campaigns.message(i).callbacks.last_error for i in dead} == {"timed out"}
    assert {campaigns.message(i).callbacks.attempts for i in dead} == {1}
