"""The simulator's delivery reports to a receiver, and its status query, over real HTTP on real ports."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any
from urllib.parse import urlencode, urlsplit

import msgspec
import pytest
from aiohttp import web

from ops.simulator import ReportsConfig, RunningSimulator, SimulatorConfig, start_in_thread
from ops.simulator.delivery.statuses import TRACE_STATUS

API_KEY = "test-api-key"
SID = "HXTEST0000001IN"
TOKEN = "s3cret-dlr-token"
WAIT_S = 30.0  # a generous bound for reports that are due within milliseconds
# Fast reports: due a few milliseconds after acceptance, retried 10 ms later.
FAST = ReportsConfig(median_delay_ms=5.0, delay_sigma=0.5, retry_ms=10.0)
FINAL_STATUSES = {"Delivered", "Undelivered", "Failed"}


class Receiver:
    """A tiny aiohttp receiver in a thread of its own: records every request it gets, in order, and
    answers `fail_first` of them 500 before answering 200."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.fail_first = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        started: Future[int] = Future()
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(started),), daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{started.result(timeout=10)}/dlr"

    async def _serve(self, started: Future[int]) -> None:
        app = web.Application()
        app.router.add_route("*", "/dlr", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        started.set_result(runner.addresses[0][1])
        try:
            await self._stopping.wait()
        finally:
            await runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        if request.content_type == "application/json":
            fields = await request.json()
        elif request.method == "POST":
            fields = dict(await request.post())
        else:
            fields = dict(request.query)
        self.received.append(
            {
                "method": request.method,
                "content_type": request.content_type,
                "query": dict(request.query),
                "token": request.headers.get("X-Dlr-Token"),
                "headers": dict(request.headers),
                "fields": fields,
            }
        )
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.Response(status=500, text="try again")
        return web.Response(status=200, text="ok")

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(timeout=10)

    def by_id(self, id_field: str = "id") -> dict[str, list[str]]:
        """Each message's reported statuses, in the order they arrived."""
        statuses: dict[str, list[str]] = {}
        for request in self.received:
            statuses.setdefault(request["fields"][id_field], []).append(request["fields"]["status"])
        return statuses


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.stop()


StartSimulator = Callable[..., RunningSimulator]


def fast(**change: Any) -> ReportsConfig:
    return msgspec.structs.replace(FAST, **change)


@pytest.fixture
def start() -> Iterator[StartSimulator]:
    """Factory: a simulator with the test key and SID, and delivery reports configured by `reports`."""
    running: list[RunningSimulator] = []

    def _start(reports: ReportsConfig | None = None) -> RunningSimulator:
        simulator = start_in_thread(SimulatorConfig(api_key=API_KEY, sid=SID, seed=1, reports=reports))
        running.append(simulator)
        return simulator

    yield _start
    for simulator in running:
        simulator.stop()


def call(
    base_url: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    url = urlsplit(base_url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
    try:
        data = None if body is None else json.dumps(body).encode()
        connection.request(method, path, body=data, headers=headers or {})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def send(sim: RunningSimulator, count: int, start_number: int = 0) -> list[str]:
    """One /sms/json request of `count` nodes; the message ids the simulator gave them."""
    numbers = [f"+9198{start_number + i:08d}" for i in range(count)]
    payload = {"from": "KLRHXA", "type": "MKT", "body": "hello", "sms": [{"to": n} for n in numbers]}
    headers = {"content-type": "application/json", "api-key": API_KEY}
    status, reply = call(sim.base_url, "POST", f"/v1/{SID}/sms/json", payload, headers)
    assert status == 200, reply
    return [node["message_id"] for node in reply["sms"]]


def query_status(
    sim: RunningSimulator, ids: list[str], api_key: str = API_KEY, sid: str = SID
) -> tuple[int, Any]:
    path = f"/v1/{sid}/sms/status?" + urlencode({"message_ids": ",".join(ids)})
    return call(sim.base_url, "GET", path, headers={"api-key": api_key})


def simulator_reports(sim: RunningSimulator) -> dict[str, Any]:
    status, body = call(sim.base_url, "GET", "/_simulator/reports")
    assert status == 200
    return body


def wait_until(condition: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.02)
    raise AssertionError(f"gave up waiting for {what}")


def settled(sim: RunningSimulator) -> dict[str, Any]:
    """The simulator's record once every report is acknowledged or given up."""

    def done() -> dict[str, Any] | None:
        body = simulator_reports(sim)
        return body if body["summary"]["pending"] == 0 else None

    return wait_until(done, "every report acknowledged or given up")


def test_reports_go_by_post_json_with_the_default_fields_and_the_token(
    start: StartSimulator, receiver: Receiver
) -> None:
    sim = start(fast(url=receiver.url, token=TOKEN, seed=3))
    ids = send(sim, 20)

    record = settled(sim)

    assert len(receiver.received) == 20
    assert {request["method"] for request in receiver.received} == {"POST"}
    assert {request["content_type"] for request in receiver.received} == {"application/json"}
    assert {request["token"] for request in receiver.received} == {TOKEN}
    decided = {message["message_id"]: message for message in record["messages"]}
    for request in receiver.received:
        fields = request["fields"]
        assert set(fields) == {"id", "status", "status_trace", "timestamp"}
        message = decided[fields["id"]]
        assert (fields["status"], fields["status_trace"]) == (message["status"], message["status_trace"])
        assert time.strptime(fields["timestamp"], "%Y-%m-%d %H:%M:%S")
    assert sorted(request["fields"]["id"] for request in receiver.received) == sorted(ids)
    assert record["summary"]["acknowledged"] == record["summary"]["attempts"] == 20


def test_get_reports_carry_the_fields_as_query_parameters(start: StartSimulator, receiver: Receiver) -> None:
    sim = start(fast(url=receiver.url + "?profile=p1", method="GET", token=TOKEN))
    ids = send(sim, 5)

    settled(sim)

    assert [request["method"] for request in receiver.received] == ["GET"] * 5
    for request in receiver.received:
        assert request["query"]["profile"] == "p1"  # the URL's own query is kept
        assert {"id", "status", "status_trace", "timestamp"} <= set(request["query"])
        assert request["token"] == TOKEN
    assert sorted(request["query"]["id"] for request in receiver.received) == sorted(ids)


def test_a_form_post_follows_the_template_field_map_and_extra_headers(
    start: StartSimulator, receiver: Receiver
) -> None:
    template = {
        "msgid": "{id}",
        "state": "{status}",
        "detail": "{status_trace}: {description}",
        "to": "{recipient}",
        "from": "{sender}",
        "source": "kaleyra",
    }
    config = fast(
        url=receiver.url, body="form", template=template, headers={"Authorization": "Basic dXNlcjpwdw=="}
    )
    sim = start(config)
    ids = send(sim, 3, start_number=700)

    record = settled(sim)

    decided = {message["message_id"]: message for message in record["messages"]}
    assert sorted(request["fields"]["msgid"] for request in receiver.received) == sorted(ids)
    for request in receiver.received:
        fields = request["fields"]
        assert request["content_type"] == "application/x-www-form-urlencoded"
        assert request["headers"]["Authorization"] == "Basic dXNlcjpwdw=="
        assert request["token"] is None  # no token configured, no header
        assert set(fields) == set(template)
        message = decided[fields["msgid"]]
        assert fields["state"] == message["status"]
        assert fields["detail"].startswith(message["status_trace"] + ": ")
        assert fields["to"].startswith("9198000007") and fields["from"] == "KLRHXA"
        assert fields["source"] == "kaleyra"


MIX = fast(sent_rate=0.5, out_of_order_rate=0.3, duplicate_rate=0.1, drop_rate=0.1, concurrency=16, seed=42)


def test_the_receiver_gets_exactly_what_the_simulator_says_it_reported(
    start: StartSimulator, receiver: Receiver
) -> None:
    """Sent reports first (or after the final one, out of order), duplicates, drops: per message, the
    statuses a receiver counted, in their order, are the simulator's record of its reports."""
    sim = start(msgspec.structs.replace(MIX, url=receiver.url))
    ids = send(sim, 1000)

    record = settled(sim)

    counted = receiver.by_id()
    decided = {message["message_id"]: message for message in record["messages"]}
    assert set(decided) == set(ids)
    for message_id, message in decided.items():
        assert counted.get(message_id, []) == [report["status"] for report in message["reports"]]
    summary = record["summary"]
    assert summary["gave_up"] == summary["failed_attempts"] == 0
    assert summary["acknowledged"] == len(receiver.received)
    finals = {
        message_id: [s for s in statuses if s in FINAL_STATUSES] for message_id, statuses in counted.items()
    }
    assert summary["dropped"] == sum(1 for message_id in ids if not finals.get(message_id))
    assert summary["duplicated"] == sum(1 for statuses in finals.values() if len(statuses) == 2)
    assert summary["out_of_order"] == sum(1 for statuses in counted.values() if "Sent" in statuses[1:])
    assert summary["sent_reports"] == sum(1 for statuses in counted.values() if "Sent" in statuses)


def test_seeded_shares_roughly_match_the_configured_mix(start: StartSimulator, receiver: Receiver) -> None:
    sim = start(msgspec.structs.replace(MIX, url=receiver.url))
    send(sim, 1000)

    summary = settled(sim)["summary"]

    assert summary["messages"] == 1000
    assert set(summary["by_trace"]) <= set(TRACE_STATUS)
    assert 800 <= summary["by_status"]["Delivered"] <= 900  # default mix: 85% delivered
    assert 400 <= summary["sent_reports"] <= 600
    assert 0.2 <= summary["out_of_order"] / summary["sent_reports"] <= 0.4
    assert 70 <= summary["duplicated"] <= 130
    assert 70 <= summary["dropped"] <= 130


def test_the_same_seed_decides_the_same_fates(start: StartSimulator) -> None:
    def fates(sim: RunningSimulator) -> list[tuple[Any, ...]]:
        send(sim, 300)
        messages = simulator_reports(sim)["messages"]
        keys = ("status_trace", "sent_report", "out_of_order", "duplicated", "dropped")
        return [tuple(message[key] for key in keys) for message in messages]

    config = msgspec.structs.replace(MIX, median_delay_ms=60_000.0)  # decided, never sent
    first, second = fates(start(config)), fates(start(config))

    assert first == second
    assert len(set(first)) > 5  # and not all the same


def test_a_report_answered_500_is_retried_until_acknowledged(
    start: StartSimulator, receiver: Receiver
) -> None:
    receiver.fail_first = 2
    sim = start(fast(url=receiver.url, max_attempts=5))
    [message_id] = send(sim, 1)

    record = settled(sim)

    assert [request["fields"]["id"] for request in receiver.received] == [message_id] * 3
    assert len({json.dumps(request["fields"], sort_keys=True) for request in receiver.received}) == 1
    [report] = record["messages"][0]["reports"]
    assert report["state"] == "acknowledged"
    assert report["attempts"] == 3
    assert report["last_error"] == "HTTP 500"
    assert record["summary"]["failed_attempts"] == 2


def test_a_report_never_acknowledged_is_given_up_after_max_attempts(start: StartSimulator) -> None:
    closed = Receiver()
    closed.stop()  # its port now refuses connections
    sim = start(fast(url=closed.url, max_attempts=3))
    send(sim, 2)

    record = settled(sim)

    for message in record["messages"]:
        [report] = message["reports"]
        assert report["state"] == "gave_up"
        assert report["attempts"] == 3
        assert report["last_error"] == "ClientConnectorError"
    assert record["summary"]["gave_up"] == 2
    assert record["summary"]["failed_attempts"] == 6


def test_the_status_query_answers_messages_whose_reports_were_dropped(
    start: StartSimulator, receiver: Receiver
) -> None:
    sim = start(fast(url=receiver.url, drop_rate=1.0))
    ids = send(sim, 10)
    decided = {message["message_id"]: message for message in simulator_reports(sim)["messages"]}

    def final_answers() -> Any:
        status, body = query_status(sim, ids)
        assert status == 200
        return body if all(entry["status"] != "Sent" for entry in body["data"]) else None

    body = wait_until(final_answers, "every final status to take effect")

    assert body["error"] == {}
    assert [entry["campaign_id"] for entry in body["data"]] == ids
    for entry in body["data"]:
        message = decided[entry["campaign_id"]]
        assert entry["status"] == message["status"]
        expected = "DELIVERED" if message["status"] == "Delivered" else message["status_trace"]
        assert entry["status_details"] == expected
    assert receiver.received == []
    assert simulator_reports(sim)["summary"]["status_queries"] >= 1


def test_the_status_query_answers_sent_before_the_final_status(start: StartSimulator) -> None:
    sim = start(ReportsConfig(median_delay_ms=600_000.0, delay_sigma=0.0))  # no url: nothing sent
    ids = send(sim, 2)

    status, body = query_status(sim, ids)

    assert status == 200
    assert body == {
        "data": [{"campaign_id": i, "status": "Sent", "status_details": "SENT"} for i in ids],
        "error": {},
    }


def test_the_status_query_leaves_out_ids_it_never_gave(start: StartSimulator) -> None:
    sim = start(ReportsConfig(median_delay_ms=0.0))
    [message_id] = send(sim, 1)

    status, body = query_status(sim, ["00000000-0000-0000-0000-000000000000:0", message_id])

    assert status == 200
    assert [entry["campaign_id"] for entry in body["data"]] == [message_id]


def test_the_status_query_checks_the_key_and_sid_as_the_send_endpoint_does(start: StartSimulator) -> None:
    sim = start(ReportsConfig())
    ids = send(sim, 1)

    assert query_status(sim, ids, api_key="wrong")[0] == 401
    assert query_status(sim, ids, sid="HXOTHER")[0] == 404
    assert query_status(sim, [])[0] == 400


def test_without_reports_configured_nothing_is_decided_and_accepted_ids_are_delivered(
    start: StartSimulator,
) -> None:
    sim = start()
    ids = send(sim, 3)

    status, body = query_status(sim, ids)

    assert status == 200
    assert {(entry["status"], entry["status_details"]) for entry in body["data"]} == {
        ("Delivered", "DELIVERED")
    }
    assert simulator_reports(sim)["summary"]["messages"] == 0
    assert call(sim.base_url, "GET", "/_simulator/reports/config") == (200, None)


def test_reports_configured_over_http_apply_to_messages_accepted_after(
    start: StartSimulator, receiver: Receiver
) -> None:
    sim = start()
    before = send(sim, 2)
    config = {"url": receiver.url, "token": TOKEN, "method": "GET", "median_delay_ms": 1}

    status, view = call(sim.base_url, "PUT", "/_simulator/reports/config", config)
    after = send(sim, 2, start_number=100)
    settled(sim)

    assert status == 200
    assert view["token"] == "***"  # the shared secret is not shown
    assert (view["url"], view["method"], view["median_delay_ms"]) == (receiver.url, "GET", 1)
    assert sorted(request["fields"]["id"] for request in receiver.received) == sorted(after)
    assert not set(before) & {request["fields"]["id"] for request in receiver.received}


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"url": "ftp://example.com/"}, "url"),
        ({"method": "PUT"}, "method"),
        ({"template": {"id": "{message}"}}, "message"),
        ({"outcomes": {"DELIVERED-ISH": 1.0}}, "DELIVERED-ISH"),
        ({"drop_rate": 1.5}, "drop_rate"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_a_bad_reports_config_is_refused_naming_what_is_wrong_and_changes_nothing(
    start: StartSimulator, change: dict[str, Any], named: str
) -> None:
    sim = start(ReportsConfig(median_delay_ms=7.0))

    status, body = call(sim.base_url, "PUT", "/_simulator/reports/config", change)

    assert status == 400
    assert named in body["message"]
    assert call(sim.base_url, "GET", "/_simulator/reports/config")[1]["median_delay_ms"] == 7.0


def test_reset_forgets_decisions_and_reports_not_yet_sent(start: StartSimulator, receiver: Receiver) -> None:
    sim = start(ReportsConfig(url=receiver.url, median_delay_ms=600_000.0, delay_sigma=0.0))
    send(sim, 5)

    call(sim.base_url, "POST", "/_simulator/reset")

    summary = simulator_reports(sim)["summary"]
    assert (summary["messages"], summary["reports"], summary["pending"]) == (0, 0, 0)


def test_tens_of_thousands_of_pending_reports_share_one_timer_and_a_bounded_pool(
    start: StartSimulator, receiver: Receiver
) -> None:
    sim = start(ReportsConfig(url=receiver.url, median_delay_ms=600_000.0, concurrency=8))
    for batch in range(20):
        send(sim, 1000, start_number=batch * 1000)

    summary = simulator_reports(sim)["summary"]
    # The simulator's loop is private; a test may look at what runs on it.
    tasks = asyncio.run_coroutine_threadsafe(_task_count(), sim._loop).result(timeout=10)

    assert summary["pending"] == 20_000
    assert tasks < 30  # the server's own, the scheduler and 8 senders: not one per report


async def _task_count() -> int:
    return len(asyncio.all_tasks())
