"""kill -9 `campaign serve` (every process of it) while the simulator streams delivery reports to its
receiver; the simulator sends again each report that got no 2xx, and `campaign serve` comes back on
the same port.

Invariants: every report is acknowledged in the end (none given up, none answered 4xx or 5xx); every
message's record in its request's delivery string says the simulator's final status; the campaign
counts each message's final report once: its delivered, undelivered and dlr_failed are the
simulator's, although reports come twice (duplicates, and the retries of reports stored just before
the kill whose 2xx died with the service); no early report is left waiting.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections import Counter
from typing import Any

import pytest
import redis

from ops.services import free_port
from ops.simulator import ReportsConfig, RunningSimulator, SimulatorConfig, start_in_thread
from producer import Campaigns
from producer.control import CampaignStatus, campaign_status
from producer.publish import publish_campaign
from producer.spec import build_spec
from redis_model import keys
from redis_model.delivery import (
    CAMPAIGN,
    HEADER_BYTES,
    RECORD_BYTES,
    decode_header,
    decode_record,
    split_message_id,
)
from schemas.delivery import DeliveryStatus, delivery_status
from tests.chaos.harness import API_KEY, kill9, wait_finished, wait_for, worker_env
from worker.broker import build_broker

pytestmark = pytest.mark.redis

CAMPAIGN_SIZE, CHUNK, SINGLES = 3000, 100, 300
KILL_AFTER = 1200  # reports acknowledged before the kill
DOWN_S = 1.0  # how long the service stays dead before it is started again
TOKEN = "chaos-dlr-token-0123456789abcdef"
# The service records reports that came before their request was settled once a second.
SETTLE_S = 10.0
COUNTERS = {
    DeliveryStatus.DELIVERED: "delivered",
    DeliveryStatus.UNDELIVERED: "undelivered",
    DeliveryStatus.FAILED: "dlr_failed",
}


def reports_config(receiver: str) -> ReportsConfig:
    """Reports over a few seconds, half with a Sent report (some after the final one), a fifth of the
    final ones twice; retried every 50-250 ms for a minute, long enough to outlast the outage."""
    return ReportsConfig(
        url=receiver, token=TOKEN, median_delay_ms=1000, delay_sigma=0.6, sent_rate=0.5,
        out_of_order_rate=0.3, duplicate_rate=0.2, drop_rate=0.0, max_attempts=240, retry_ms=50,
        max_retry_ms=250, timeout_ms=2000, concurrency=32, seed=21,
    )  # fmt: skip


def test_serve_killed_while_reports_stream_in_loses_no_acknowledged_report_and_counts_none_twice(
    redis_server, redis_client, make_settings, workers, serve, report_trial
):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # Slow replies hold a chunk's settlement back while its reports go: those come early, and wait
    # in Redis for the service's pass over early reports.
    config = SimulatorConfig(
        api_key=API_KEY, latency_ms=20, slow_reply_rate=0.25, slow_reply_ms=1000, seed=21,
        reports=reports_config(url + "/v1/dlr/kaleyra"),
    )  # fmt: skip
    with start_in_thread(config) as simulator:
        env = worker_env(redis_server.url, simulator.base_url, chunk_size=CHUNK)
        serve_env = env | {"CAMPAIGN_DLR_TOKEN": TOKEN}
        first = serve(serve_env, port)
        workers(env, threads=4, name="worker")
        wait_for(lambda: _ready(url), timeout=30, interval=0.1)
        settings = make_settings(simulator.base_url, chunk_size=CHUNK)
        began = time.monotonic()
        campaign_id = _publish(redis_client, settings)
        campaigns = Campaigns(redis_client, settings)
        for n in range(SINGLES):
            campaigns.send_message(to=f"+9198{n:08d}", body=f"Order {n} shipped", sender="SHOP", type="TXN")

        # Given reports streaming in, when serve dies with them in flight and comes back DOWN_S later:
        early = _EarlyPeak(redis_client)
        wait_for(
            lambda: early() and _summary(simulator)["acknowledged"] >= KILL_AFTER, timeout=30, interval=0.01
        )
        at_kill = _summary(simulator)
        killed = kill9(first)
        _until_refused(port)
        cut = _stored_unacknowledged(redis_client, _reports(simulator)["messages"])
        time.sleep(max(0.0, killed + DOWN_S - time.monotonic()))
        restarted, acknowledged = time.monotonic(), _summary(simulator)["acknowledged"]
        second = serve(serve_env, port)
        wait_for(
            lambda: early() and _summary(simulator)["acknowledged"] > acknowledged, timeout=30, interval=0.01
        )
        back = time.monotonic()

        # then the simulator's retries carry every report through, and the counts settle.
        wait_finished(redis_client, campaign_id, timeout=30)
        wait_for(
            lambda: early() and (s := _summary(simulator))["messages"] == CAMPAIGN_SIZE + SINGLES
            and s["pending"] == 0,
            timeout=40, interval=0.1,
        )  # fmt: skip
        record = _reports(simulator)
        expected = _expected_counts(redis_client, campaign_id, record["messages"])
        status = _settled(redis_client, campaign_id, expected)
        assert second.poll() is None, "campaign serve, started again on the same port, ended"
        run_s = time.monotonic() - began

    summary, messages = record["summary"], record["messages"]
    found = _records(redis_client, [m["message_id"] for m in messages])
    unrecorded = [m["message_id"] for m in messages if found[m["message_id"]] is None]
    wrong = [
        (m["message_id"], m["status"], found[m["message_id"]])
        for m in messages
        if (got := found[m["message_id"]]) is not None and got.status is not delivery_status(m["status"])
    ]
    counted = Counter({status_: getattr(status, name) for status_, name in COUNTERS.items()})
    twice = sum((counted - expected).values())
    lost = len(unrecorded) + sum((expected - counted).values())
    # Each report's last failed attempt (the simulator keeps no more): refused while serve was down.
    errors = Counter(r["last_error"] for m in messages for r in m["reports"] if r["last_error"])
    early_left = redis_client.zcard(keys.EARLY_REPORTS)
    report_trial(
        trial="kill9:serve:dlr", reports=summary["reports"], acknowledged=summary["acknowledged"],
        acked_at_kill=at_kill["acknowledged"], stored_unacked=cut, early_peak=early.peak,
        retried=summary["attempts"] - summary["reports"],
        failed_attempts=summary["failed_attempts"], gave_up=summary["gave_up"], lost=lost,
        double_counted=twice, early_left=early_left, down_s=back - killed, recovery_s=back - restarted,
        run_s=run_s,
    )  # fmt: skip
    print(
        f"\nkill9:serve:dlr reports={summary['reports']} acknowledged={summary['acknowledged']} "
        f"at_kill={at_kill['acknowledged']} stored_unacked={cut} early_peak={early.peak} "
        f"retried_attempts={summary['attempts'] - summary['reports']} "
        f"lost={lost} double_counted={twice} down_s={back - killed:.2f} recovery_s={back - restarted:.2f} "
        f"run_s={run_s:.1f} errors={dict(errors)}"
    )
    assert summary["gave_up"] == 0 and summary["acknowledged"] == summary["reports"]
    assert summary["failed_attempts"] > 0  # the kill found the receiver busy: reports were sent again
    assert not [e for e in errors if e.startswith("HTTP")], f"answered neither 2xx nor silence: {errors}"
    assert not unrecorded, f"{len(unrecorded)} acknowledged final reports not recorded: {unrecorded[:5]}"
    assert not wrong, f"{len(wrong)} records differ from the final status: {wrong[:5]}"
    assert counted == expected, f"campaign counts {dict(counted)}, the simulator's {dict(expected)}"
    assert early_left == 0, "early reports left waiting"


def _publish(client: redis.Redis, settings) -> str:
    spec = build_spec(
        settings=settings, sender="KLRHXA", type="MKT", body="Hi", prefix="+91", on_unknown="hold"
    )
    rows = [(i + 2, f"90000{i:05d}") for i in range(CAMPAIGN_SIZE)]
    publish_campaign(spec, rows, client=client, broker=build_broker(settings, client), settings=settings)
    return spec.campaign_id


def _get(simulator: RunningSimulator, path: str) -> Any:
    with urllib.request.urlopen(simulator.base_url + path, timeout=10) as reply:
        return json.load(reply)


def _summary(simulator: RunningSimulator) -> dict[str, int]:
    return _get(simulator, "/_simulator/reports?summary=1")["summary"]


def _reports(simulator: RunningSimulator) -> dict[str, Any]:
    return _get(simulator, "/_simulator/reports")


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=2) as reply:
            return bool(reply.status == 200)
    except OSError:  # not listening yet
        return False


def _until_refused(port: int, timeout: float = 5.0) -> None:
    """Until nothing listens on `port`: no serving process outlived the kill."""

    def refused() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            return True
        except (ConnectionResetError, TimeoutError):  # taken by a listener that died meanwhile: again
            return False
        return False

    wait_for(refused, timeout=timeout, interval=0.01)


class _EarlyPeak:
    """Called while waiting: the most requests seen with early reports waiting at once (always true)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client, self.peak = client, 0

    def __call__(self) -> bool:
        self.peak = max(self.peak, int(self.client.zcard(keys.EARLY_REPORTS)))
        return True


def _stored_unacknowledged(client: redis.Redis, messages: list[dict]) -> int:
    """With serve dead: final reports not acknowledged that Redis holds already (their 2xx died with
    the service; their retry must not count them again)."""
    waiting = [
        m["message_id"] for m in messages
        if any(r["kind"] == "final" and r["state"] == "pending" for r in m["reports"])
    ]  # fmt: skip
    return sum(1 for got in _records(client, waiting).values() if got and got.status.final)


def _headers(client: redis.Redis, request_ids: list[str]) -> dict[str, Any]:
    with client.pipeline(transaction=False) as pipe:
        for request_id in request_ids:
            pipe.getrange(keys.delivery(request_id), 0, HEADER_BYTES - 1)
        return {r: decode_header(raw) for r, raw in zip(request_ids, pipe.execute(), strict=True)}


def _records(client: redis.Redis, message_ids: list[str]) -> dict[str, Any]:
    """Each message's record in its request's delivery string (None: no report recorded)."""
    where = [split_message_id(message_id) for message_id in message_ids]
    with client.pipeline(transaction=False) as pipe:
        for split in where:
            assert split is not None
            request_id, position = split
            offset = HEADER_BYTES + position * RECORD_BYTES
            pipe.getrange(keys.delivery(request_id), offset, offset + RECORD_BYTES - 1)
        return {m: decode_record(raw) for m, raw in zip(message_ids, pipe.execute(), strict=True)}


def _expected_counts(client: redis.Redis, campaign_id: str, messages: list[dict]) -> Counter:
    """The simulator's final statuses of the campaign's messages (its requests' headers say whose)."""
    splits = {m["message_id"]: split_message_id(m["message_id"]) for m in messages}
    headers = _headers(client, sorted({s[0] for s in splits.values() if s}))
    ours = [
        m for m in messages
        if (h := headers[splits[m["message_id"]][0]]) and h.kind == CAMPAIGN and h.campaign_id == campaign_id
    ]  # fmt: skip
    assert len(ours) == CAMPAIGN_SIZE, f"{len(ours)} of the campaign's messages have a header"
    return Counter(delivery_status(m["status"]) for m in ours)


def _settled(client: redis.Redis, campaign_id: str, expected: Counter) -> CampaignStatus:
    """The campaign's status once its counts reach the simulator's (or SETTLE_S passed), then a moment
    more for anything counted late (a second pass of the early reports)."""
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        status = campaign_status(client, campaign_id)
        if status.delivered + status.undelivered + status.dlr_failed >= expected.total():
            break
        time.sleep(0.1)
    time.sleep(1.5)
    return campaign_status(client, campaign_id)
