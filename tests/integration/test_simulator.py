"""The gateway simulator, exercised over real HTTP on a real port."""

from __future__ import annotations

import http.client
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import pytest

from ops.simulator import RECORD_KEY, RunningSimulator, SimulatorConfig, SimulatorRecord, create_app
from ops.simulator import start_in_thread as start_simulator
from schemas.errors import InputError
from schemas.kaleyra import FlatErrorResponse, NestedErrorResponse, SmsJsonResponse

API_KEY = "test-api-key"
SID = "HXTEST0000001IN"
NUMBER = "+919876543210"
E403_MESSAGE = "Some thing went wrong at our end please try again after some time"
E402_MESSAGE = "Message can be scheduled for after 15 minutes from current time and before 3 months from now."
IST = timezone(timedelta(hours=5, minutes=30))
ROOT = Path(__file__).resolve().parents[2]
# A held reply: long enough to look at the simulator meanwhile; the tests wait it out.
HOLD_MS = 1000

StartSimulator = Callable[..., RunningSimulator]


@pytest.fixture
def start() -> Iterator[StartSimulator]:
    """Factory: a simulator with the test key and SID, `SimulatorConfig` fields overridable."""
    running: list[RunningSimulator] = []

    def _start(**overrides: Any) -> RunningSimulator:
        simulator = start_simulator(SimulatorConfig(**{"api_key": API_KEY, "sid": SID, **overrides}))
        running.append(simulator)
        return simulator

    yield _start
    for simulator in running:
        simulator.stop()


@pytest.fixture
def sim(start: StartSimulator) -> RunningSimulator:
    return start()


def call(
    base_url: str, method: str, path: str, body: Any = None, headers: Any = None, *, timeout: float = 5
) -> tuple[int, Any]:
    url = urlsplit(base_url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=timeout)
    try:
        data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
        connection.request(method, path, body=data, headers=headers or {})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def send(
    sim: RunningSimulator, payload: Any, *, api_key: str | None = API_KEY, sid: str = SID, timeout: float = 5
) -> tuple[int, Any]:
    headers = {"content-type": "application/json"} | ({"api-key": api_key} if api_key is not None else {})
    return call(sim.base_url, "POST", f"/v1/{sid}/sms/json", payload, headers, timeout=timeout)


def sms(*numbers: Any, **top: Any) -> dict[str, Any]:
    """A valid request (sender and body at the top level) to `numbers`, `top` overriding fields."""
    return {"from": "ACME", "body": "Hello", **top, "sms": [{"to": number} for number in numbers]}


def code_of(reply: dict[str, Any]) -> str:
    return reply["code"] if "code" in reply else reply["error"]["code"]


def wait_for_stats(sim: RunningSimulator, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Polls `GET /_simulator/stats` (safe while requests are in flight) until `done`, 10 s at most."""
    deadline = time.monotonic() + 10
    while True:
        stats = call(sim.base_url, "GET", "/_simulator/stats")[1]
        if done(stats) or time.monotonic() > deadline:
            return stats
        time.sleep(0.005)


def faults_view(**faults: float) -> dict[str, object]:
    """`GET /_simulator/faults` with every fault off but `faults`."""
    off = {"e403_rate": 0.0, "latency_ms": 0.0, "slow_reply_rate": 0.0, "slow_reply_ms": 0.0}
    return {**off, "refuse_key": False, "down_until": None, **faults}


def at(delta: timedelta, tz: timezone = UTC) -> str:
    return (datetime.now(UTC) + delta).astimezone(tz).isoformat(timespec="seconds")


# --- refusals before validation


@pytest.mark.parametrize("api_key", [None, "wrong-key"])
def test_missing_or_wrong_api_key_is_refused_with_401(sim: RunningSimulator, api_key: str | None) -> None:
    status, reply = send(sim, sms(NUMBER), api_key=api_key)

    assert (status, reply) == (401, {"code": "UNAUTHORIZED", "message": "invalid or missing api-key"})
    assert sim.record.rejected == {"UNAUTHORIZED": 1}


def test_unknown_sid_is_404_when_a_sid_is_configured(sim: RunningSimulator) -> None:
    status, reply = send(sim, sms(NUMBER), sid="HXOTHER")

    assert (status, reply) == (404, {"code": "NOT_FOUND", "message": "unknown SID"})


def test_any_sid_is_accepted_when_none_is_configured(start: StartSimulator) -> None:
    sim = start(sid=None)

    status, _ = send(sim, sms(NUMBER), sid="HXANYTHING")

    assert status == 200


# --- E7xx, nested shape


def test_body_that_is_not_json_is_e700_nested(sim: RunningSimulator) -> None:
    status, reply = send(sim, b"{not json")

    assert status == 400
    assert reply == {
        "error": {
            "code": "E700",
            "type": "VALIDATION_ERROR",
            "parameter": "sms",
            "message": "Please enter a valid JSON object",
            "reference": "0",
        }
    }
    msgspec.convert(reply, NestedErrorResponse)  # what the worker decodes


def test_json_that_is_not_an_object_is_e700(sim: RunningSimulator) -> None:
    status, reply = send(sim, [sms(NUMBER)])

    assert (status, reply["error"]["code"], reply["error"]["parameter"]) == (400, "E700", "sms")


def test_field_of_the_wrong_type_is_e700_naming_the_field(sim: RunningSimulator) -> None:
    status, reply = send(sim, sms(NUMBER, body=["not", "text"]))

    assert (status, reply["error"]["code"], reply["error"]["parameter"]) == (400, "E700", "body")


def test_error_reference_is_the_request_counter(sim: RunningSimulator) -> None:
    send(sim, sms(NUMBER))
    _, reply = send(sim, b"[")

    assert reply["error"]["reference"] == "1"


def test_channel_other_than_sms_is_e700(sim: RunningSimulator) -> None:
    status, reply = send(sim, sms(NUMBER, channel="WHATSAPP"))

    assert (status, reply["error"]["code"], reply["error"]["parameter"]) == (400, "E700", "channel")


def test_channel_is_case_insensitive(sim: RunningSimulator) -> None:
    status, _ = send(sim, sms(NUMBER, channel="sms"))

    assert status == 200


@pytest.mark.parametrize(
    "payload", [{"from": "ACME", "body": "Hi", "sms": []}, {"from": "ACME", "body": "Hi"}]
)
def test_empty_or_missing_sms_is_e703(sim: RunningSimulator, payload: dict[str, Any]) -> None:
    status, reply = send(sim, payload)

    assert (status, reply["error"]["code"], reply["error"]["parameter"]) == (400, "E703", "sms")
    assert reply["error"]["message"] == "sms field is mandatory and cannot be empty"


def test_otp_to_two_nodes_is_e708(sim: RunningSimulator) -> None:
    status, reply = send(sim, sms(NUMBER, "+919876543211", type="OTP"))

    assert (status, code_of(reply)) == (400, "E708")


def test_1001_nodes_are_refused_with_e700_and_seen_as_max_nodes(sim: RunningSimulator) -> None:
    numbers = [f"+9198765{i:05d}" for i in range(1001)]

    status, reply = send(sim, sms(*numbers))

    assert (status, reply["error"]["code"], reply["error"]["parameter"]) == (400, "E700", "sms")
    assert "at most 1000" in reply["error"]["message"]
    assert sim.record.max_nodes == 1001
    assert sim.record.messages == []


def test_1000_nodes_are_accepted(sim: RunningSimulator) -> None:
    status, reply = send(sim, sms(*[f"+9198765{i:05d}" for i in range(1000)]))

    assert (status, len(reply["sms"])) == (200, 1000)


# --- E4xx / E6xx, flat shape


def test_unknown_type_is_e615(sim: RunningSimulator) -> None:
    status, reply = send(sim, sms(NUMBER, type="PROMO"))

    assert (status, reply["code"], list(reply["error"])) == (400, "E615", ["type"])
    msgspec.convert(reply, FlatErrorResponse)


def test_missing_body_is_e601(sim: RunningSimulator) -> None:
    status, reply = send(sim, {"from": "ACME", "sms": [{"to": NUMBER}]})

    assert (status, reply["code"], reply["message"]) == (400, "E601", "Body cannot be left empty")


def test_body_of_4001_characters_is_e401(sim: RunningSimulator) -> None:
    status, reply = send(sim, sms(NUMBER, body="x" * 4001))

    assert (status, reply["code"]) == (400, "E401")


def test_body_of_4000_characters_is_accepted(sim: RunningSimulator) -> None:
    status, _ = send(sim, sms(NUMBER, body="é" * 4000))

    assert status == 200


def test_unicode_other_than_auto_0_1_is_e604(sim: RunningSimulator) -> None:
    status, reply = send(sim, {"from": "ACME", "body": "Hi", "sms": [{"to": NUMBER, "unicode": "yes"}]})

    assert (status, reply["code"], list(reply["error"])) == (400, "E604", ["sms[0].unicode"])


@pytest.mark.parametrize("flag", ["AUTO", "auto", "0", "1", 0, 1])
def test_unicode_flags_are_case_insensitive_text_or_number(sim: RunningSimulator, flag: Any) -> None:
    status, _ = send(sim, sms(NUMBER, unicode=flag))

    assert status == 200


def test_missing_sender_is_e602(sim: RunningSimulator) -> None:
    status, reply = send(sim, {"body": "Hi", "sms": [{"to": NUMBER}]})

    assert (status, reply["code"]) == (400, "E602")


@pytest.mark.parametrize("node", [{}, {"to": ""}])
def test_node_without_to_is_e600(sim: RunningSimulator, node: dict[str, str]) -> None:
    status, reply = send(sim, {"from": "ACME", "body": "Hi", "sms": [{"to": NUMBER}, node]})

    assert (status, reply["code"], list(reply["error"])) == (400, "E600", ["sms[1].to"])


def test_schedule_5_minutes_ahead_is_e402_as_documented(sim: RunningSimulator) -> None:
    status, reply = send(sim, sms(NUMBER, time=at(timedelta(minutes=5))))

    assert (status, reply) == (
        400,
        {"code": "E402", "message": E402_MESSAGE, "error": {"time": E402_MESSAGE}},
    )


@pytest.mark.parametrize(
    "time",
    [
        at(timedelta(minutes=14)),
        at(timedelta(days=93)),
        at(timedelta(hours=1)).removesuffix("+00:00"),  # no offset
        "2030-13-01T10:00:00+05:30",
        "tomorrow",
    ],
)
def test_schedule_too_far_or_malformed_is_e402(sim: RunningSimulator, time: str) -> None:
    status, reply = send(sim, sms(NUMBER, time=time))

    assert (status, reply["code"]) == (400, "E402")


@pytest.mark.parametrize(
    "make_time",  # made when the test runs: a time made at collection may have drifted under 15 minutes
    [
        lambda: at(timedelta(hours=1), IST),
        lambda: at(timedelta(hours=1)).replace("+00:00", "Z"),
        lambda: at(timedelta(minutes=16)),
        lambda: at(timedelta(days=91)),
    ],
    ids=["1h-ist", "1h-zulu", "16min", "91days"],
)
def test_schedule_16_minutes_to_91_days_ahead_is_accepted(sim: RunningSimulator, make_time) -> None:
    status, _ = send(sim, sms(NUMBER, time=make_time()))

    assert status == 200


def test_invalid_numbers_are_dropped_from_the_reply(sim: RunningSimulator) -> None:
    status, reply = send(sim, sms("+91 98765 43210", NUMBER, "12345", "+1202555012345678"))

    assert status == 200
    assert [(node["recepient"], node["message_id"][-2:]) for node in reply["sms"]] == [("919876543210", ":1")]
    assert sim.record.counts_by_number() == {NUMBER: 1}


def test_no_valid_number_is_e406(sim: RunningSimulator) -> None:
    status, reply = send(sim, sms("12345", "not-a-number"))

    assert (status, reply["code"]) == (400, "E406")
    assert sim.record.messages == []


def test_numeric_to_is_accepted(sim: RunningSimulator) -> None:
    _, reply = send(sim, sms(919876543210))

    assert reply["sms"][0]["recepient"] == "919876543210"


# --- success


def test_success_reply_has_the_documented_shape(sim: RunningSimulator) -> None:
    status, reply = send(sim, sms(NUMBER, "+14155550100", "+447700900123", type="TXN", template_id="T1"))

    assert status == 200
    assert set(reply) == {"body", "createdDateTime", "id", "sms", "source", "type"}
    assert (reply["body"], reply["source"], reply["type"]) == ("Hello", "API", "TXN")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+00:00", reply["createdDateTime"])
    assert [node["recepient"] for node in reply["sms"]] == ["919876543210", "14155550100", "447700900123"]
    assert [node["message_id"] for node in reply["sms"]] == [f"{reply['id']}:{i}" for i in range(3)]
    assert set(reply["sms"][0]) == {"body", "from", "message_id", "recepient", "template_id"}
    decoded = msgspec.convert(reply, SmsJsonResponse)  # what the worker decodes
    assert [node.number for node in decoded.sms] == ["919876543210", "14155550100", "447700900123"]


def test_message_ids_are_unique_across_requests(sim: RunningSimulator) -> None:
    replies = [send(sim, sms(NUMBER, "+14155550100"))[1] for _ in range(3)]

    ids = [node["message_id"] for reply in replies for node in reply["sms"]]
    assert len(set(ids)) == 6


def test_type_defaults_to_default(sim: RunningSimulator) -> None:
    _, reply = send(sim, sms(NUMBER))

    assert reply["type"] == "DEFAULT"


def test_accepted_messages_are_recorded_with_effective_body_and_sender(sim: RunningSimulator) -> None:
    payload = {
        "from": "ACME",
        "body": "Top",
        "unicode": "0",
        "sms": [{"to": NUMBER}, {"to": "+14155550100", "body": "Own", "from": "OTHER", "unicode": "AUTO"}],
    }

    send(sim, sms(NUMBER))
    _, reply = send(sim, payload)

    recorded = sim.record.messages[1:]
    assert [(m.to, m.body, m.sender, m.unicode, m.request_index) for m in recorded] == [
        (NUMBER, "Top", "ACME", "0", 1),
        ("+14155550100", "Own", "OTHER", "auto", 1),
    ]
    assert [m.message_id for m in recorded] == [node["message_id"] for node in reply["sms"]]
    assert [node["body"] for node in reply["sms"]] == ["Top", "Own"]


# --- faults


def test_e403_rate_one_answers_e403_in_three_forms_and_records_nothing(start: StartSimulator) -> None:
    sim = start(e403_rate=1.0)

    answers = [send(sim, sms(NUMBER)) for _ in range(3)]

    flat = {"code": "E403", "message": E403_MESSAGE}
    assert [(status, code_of(reply)) for status, reply in answers] == [
        (500, "E403"),
        (400, "E403"),
        (200, "E403"),
    ]
    assert answers[0][1] == flat
    assert answers[2][1] == flat
    assert answers[1][1]["error"]["message"] == E403_MESSAGE
    assert (sim.record.e403_injected, sim.record.accepted_requests, sim.record.messages) == (3, 0, [])


def test_seeded_e403_injection_is_reproducible(start: StartSimulator) -> None:
    first, second = start(e403_rate=0.5, seed=7), start(e403_rate=0.5, seed=7)

    runs = [[send(sim, sms(NUMBER))[0] for _ in range(12)] for sim in (first, second)]

    assert runs[0] == runs[1]
    assert 200 in runs[0] and len(set(runs[0])) > 1


def test_faults_changed_at_run_time_turn_e403_off(start: StartSimulator) -> None:
    sim = start(e403_rate=1.0, latency_ms=5)
    assert code_of(send(sim, sms(NUMBER))[1]) == "E403"

    status, faults = call(sim.base_url, "PUT", "/_simulator/faults", {"e403_rate": 0.0})

    assert (status, faults) == (200, faults_view(latency_ms=5.0))
    assert send(sim, sms(NUMBER))[0] == 200


def test_a_refused_key_fault_answers_401_to_the_right_key_until_turned_off(sim: RunningSimulator) -> None:
    status, faults = call(sim.base_url, "PUT", "/_simulator/faults", {"refuse_key": True})
    assert (status, faults["refuse_key"]) == (200, True)

    assert send(sim, sms(NUMBER))[0] == 401
    sim.set_faults(refuse_key=False)
    assert send(sim, sms(NUMBER))[0] == 200
    assert sim.record.rejected == {"UNAUTHORIZED": 1}


def test_an_outage_refuses_connections_for_its_length_then_serves_the_same_record(
    sim: RunningSimulator,
) -> None:
    assert send(sim, sms(NUMBER))[0] == 200
    call(sim.base_url, "PUT", "/_simulator/faults", {"down_ms": 600})

    with pytest.raises(ConnectionRefusedError):
        send(sim, sms(NUMBER), timeout=1)
    deadline = time.monotonic() + 10
    while True:
        try:
            status, _ = send(sim, sms(NUMBER), timeout=1)
            break
        except ConnectionRefusedError:
            assert time.monotonic() < deadline, "the simulator never came back"
            time.sleep(0.05)

    assert status == 200
    assert len(sim.record.messages) == 2  # the record outlived the outage


def test_an_outage_answers_a_kept_alive_connection_503_and_closes_it(sim: RunningSimulator) -> None:
    url = urlsplit(sim.base_url)
    kept = http.client.HTTPConnection(url.hostname or "", url.port, timeout=5)
    headers = {"content-type": "application/json", "api-key": API_KEY}
    try:
        kept.request("POST", f"/v1/{SID}/sms/json", body=json.dumps(sms(NUMBER)), headers=headers)
        first = kept.getresponse()
        assert (first.status, bool(first.read())) == (200, True)
        sim.set_faults(down_ms=2000)
        kept.request("POST", f"/v1/{SID}/sms/json", body=json.dumps(sms(NUMBER)), headers=headers)
        response = kept.getresponse()
        response.read()
    finally:
        kept.close()

    assert (response.status, response.getheader("Connection")) == (503, "close")
    assert sim.record.rejected == {"DOWN": 1}
    assert len(sim.record.messages) == 1


def test_latency_set_at_run_time_is_reported_by_stats(sim: RunningSimulator) -> None:
    call(sim.base_url, "PUT", "/_simulator/faults", {"latency_ms": 3})

    _, stats = call(sim.base_url, "GET", "/_simulator/stats")

    assert stats["faults"] == faults_view(latency_ms=3.0)
    assert send(sim, sms(NUMBER))[0] == 200


def test_faults_change_together_in_one_put(sim: RunningSimulator) -> None:
    status, faults = call(sim.base_url, "PUT", "/_simulator/faults", {"e403_rate": 0.25, "latency_ms": 2})

    assert (status, faults) == (200, faults_view(e403_rate=0.25, latency_ms=2.0))


def test_reseeding_at_run_time_replays_the_e403_sequence(start: StartSimulator) -> None:
    sim = start(e403_rate=0.5, seed=3)

    def outcomes() -> list[str]:
        return [
            code_of(reply) if "sms" not in reply else "OK"
            for _, reply in (send(sim, sms(NUMBER)) for _ in range(12))
        ]

    first = outcomes()
    call(sim.base_url, "PUT", "/_simulator/faults", {"seed": 3})

    assert outcomes() == first
    assert set(first) == {"OK", "E403"}


@pytest.mark.parametrize(
    "change",
    [
        {"e403_rate": 1.5},
        {"latency_ms": -1},
        {"slow_reply_rate": -0.1},
        {"slow_reply_ms": -5},
        {"e403": 1},
        b"nope",
    ],
)
def test_bad_fault_change_is_refused_and_changes_nothing(sim: RunningSimulator, change: Any) -> None:
    body = (
        {"latency_ms": 9, **change} if isinstance(change, dict) else change
    )  # the valid part is not applied

    status, reply = call(sim.base_url, "PUT", "/_simulator/faults", body)

    assert (status, reply["code"]) == (400, "BAD_REQUEST")
    assert call(sim.base_url, "GET", "/_simulator/faults")[1] == faults_view()


# --- slow replies: accepted and recorded, answered late


def test_latency_is_a_round_trip_half_before_processing_half_after(start: StartSimulator) -> None:
    """Half on the way in (a worker killed then sent nothing), half on the way back (the messages
    are recorded before the reply leaves), so that requests processed one after another go back
    out spread as they came in, not woken together."""
    sim = start(latency_ms=2 * HOLD_MS)

    with ThreadPoolExecutor(1) as pool:
        sending = pool.submit(send, sim, sms(NUMBER))
        arrived = wait_for_stats(sim, lambda stats: stats["requests"] == 1)
        recorded = wait_for_stats(sim, lambda stats: stats["accepted_messages"] == 1)
        answered_by_then = sending.done()
        status, _ = sending.result()

    assert (arrived["requests"], arrived["accepted_requests"]) == (1, 0)
    assert recorded["accepted_messages"] == 1 and not answered_by_then
    assert status == 200


def test_slow_reply_is_recorded_as_accepted_before_it_is_answered(start: StartSimulator) -> None:
    sim = start(slow_reply_rate=1.0, slow_reply_ms=HOLD_MS)

    with ThreadPoolExecutor(1) as pool:
        sending = pool.submit(send, sim, sms(NUMBER))
        held = wait_for_stats(sim, lambda stats: stats["replies_held"] == 1)
        _, recorded = call(sim.base_url, "GET", "/_simulator/messages")
        status, reply = sending.result()

    assert (held["replies_held"], held["slow_replies"], held["accepted_messages"]) == (1, 1, 1)
    assert [message["to"] for message in recorded] == [NUMBER]
    assert status == 200
    assert [message["message_id"] for message in recorded] == [reply["sms"][0]["message_id"]]
    assert (sim.record.slow_replies, sim.record.replies_held) == (1, 0)


def test_client_timing_out_on_a_slow_reply_leaves_its_messages_recorded(start: StartSimulator) -> None:
    sim = start(slow_reply_rate=1.0, slow_reply_ms=HOLD_MS)

    with pytest.raises(TimeoutError):
        send(sim, sms(NUMBER, "+14155550100"), timeout=HOLD_MS / 1000 / 20)
    stats = wait_for_stats(sim, lambda stats: stats["slow_replies"] == 1 and stats["replies_held"] == 0)

    assert (stats["accepted_requests"], stats["accepted_messages"]) == (1, 2)
    assert (stats["slow_replies"], stats["replies_held"]) == (1, 0)  # the disconnect did not skew it
    assert sim.record.counts_by_number() == {NUMBER: 1, "+14155550100": 1}


def test_slow_reply_rate_zero_never_holds_a_reply(start: StartSimulator) -> None:
    sim = start(slow_reply_ms=60_000)  # held replies would time the client out

    statuses = [send(sim, sms(NUMBER))[0] for _ in range(5)]

    assert statuses == [200] * 5
    assert (sim.record.slow_replies, sim.record.replies_held) == (0, 0)


def test_only_accepted_requests_get_slow_replies(start: StartSimulator) -> None:
    sim = start(slow_reply_rate=1.0)

    send(sim, sms(NUMBER))
    send(sim, {"sms": []})
    send(sim, sms(NUMBER), api_key="wrong")

    assert (sim.record.accepted_requests, sim.record.slow_replies, sim.record.replies_held) == (1, 1, 0)


def test_slow_replies_turned_on_and_off_at_run_time(sim: RunningSimulator) -> None:
    status, faults = call(
        sim.base_url, "PUT", "/_simulator/faults", {"slow_reply_rate": 1, "slow_reply_ms": 0}
    )
    send(sim, sms(NUMBER))
    call(sim.base_url, "PUT", "/_simulator/faults", {"slow_reply_rate": 0})
    send(sim, sms(NUMBER))

    assert (status, faults) == (200, faults_view(slow_reply_rate=1.0))
    assert (sim.record.accepted_requests, sim.record.slow_replies) == (2, 1)


def test_bad_slow_reply_change_names_the_value(sim: RunningSimulator) -> None:
    _, reply = call(sim.base_url, "PUT", "/_simulator/faults", {"slow_reply_ms": -5})

    assert reply["message"] == "slow_reply_ms=-5.0 must be a finite number of milliseconds, 0 or more"


def test_reset_while_a_reply_is_held_keeps_it_counted_as_held(start: StartSimulator) -> None:
    """`replies_held` counts live requests: a reset must not let it go negative when they end."""
    sim = start(slow_reply_rate=1.0, slow_reply_ms=HOLD_MS)

    with ThreadPoolExecutor(1) as pool:
        sending = pool.submit(send, sim, sms(NUMBER))
        wait_for_stats(sim, lambda stats: stats["replies_held"] == 1)
        _, after_reset = call(sim.base_url, "POST", "/_simulator/reset")
        status, _ = sending.result()

    assert (after_reset["slow_replies"], after_reset["replies_held"]) == (0, 1)
    assert status == 200
    assert (sim.record.slow_replies, sim.record.replies_held) == (0, 0)


def test_config_error_names_the_value() -> None:
    with pytest.raises(InputError, match=r"^slow_reply_rate=1\.5 must be a probability between 0 and 1$"):
        SimulatorConfig(api_key=API_KEY, slow_reply_rate=1.5)


# --- introspection


def test_stats_count_requests_refusals_and_duplicates(sim: RunningSimulator) -> None:
    send(sim, sms(NUMBER, "+14155550100"))
    send(sim, sms(NUMBER))
    send(sim, sms(NUMBER), api_key="wrong")
    send(sim, {"sms": []})

    _, stats = call(sim.base_url, "GET", "/_simulator/stats")

    assert stats == {
        "requests": 4,
        "accepted_requests": 2,
        "accepted_messages": 3,
        "rejected": {"UNAUTHORIZED": 1, "E703": 1},
        "e403_injected": 0,
        "max_nodes": 2,
        "distinct_numbers": 2,
        "duplicate_numbers": 1,
        "slow_replies": 0,
        "replies_held": 0,
        "most_in_flight": 1,
        "faults": faults_view(),
    }


def test_messages_endpoint_lists_accepted_messages(sim: RunningSimulator) -> None:
    _, reply = send(sim, sms(NUMBER))

    status, messages = call(sim.base_url, "GET", "/_simulator/messages")

    message_id = reply["sms"][0]["message_id"]
    assert status == 200
    assert messages == [
        {
            "message_id": message_id,
            "to": NUMBER,
            "body": "Hello",
            "sender": "ACME",
            "unicode": "auto",
            "request_index": 0,
        }
    ]


def test_reset_clears_the_record(sim: RunningSimulator) -> None:
    send(sim, sms(NUMBER))
    send(sim, {"sms": []})

    status, stats = call(sim.base_url, "POST", "/_simulator/reset")

    assert (status, stats["requests"], stats["accepted_messages"], stats["rejected"]) == (200, 0, 0, {})
    assert sim.record.messages == []


# --- running it


def test_record_is_exposed_on_the_app() -> None:
    app = create_app(SimulatorConfig(api_key=API_KEY))

    assert isinstance(app[RECORD_KEY], SimulatorRecord)


def test_port_in_use_is_raised_in_the_caller(sim: RunningSimulator) -> None:
    port = urlsplit(sim.base_url).port or 0

    with pytest.raises(OSError):
        start_simulator(SimulatorConfig(api_key=API_KEY), port=port)


def test_stopped_simulator_refuses_connections() -> None:
    with start_simulator(SimulatorConfig(api_key=API_KEY)) as sim:
        assert send(sim, sms(NUMBER))[0] == 200

    sim.stop()  # a second stop is harmless
    with pytest.raises(ConnectionRefusedError):
        send(sim, sms(NUMBER))


@pytest.mark.parametrize(
    "overrides",
    [
        {"api_key": ""},
        {"e403_rate": 1.1},
        {"e403_rate": float("nan")},
        {"latency_ms": -1.0},
        {"slow_reply_rate": 1.5},
        {"slow_reply_rate": float("nan")},
        {"slow_reply_ms": -1.0},
        {"slow_reply_ms": float("inf")},
    ],
)
def test_config_refuses_unusable_values(overrides: dict[str, Any]) -> None:
    with pytest.raises(InputError):
        SimulatorConfig(**{"api_key": API_KEY, **overrides})


def test_config_repr_hides_the_api_key() -> None:
    assert API_KEY not in repr(SimulatorConfig(api_key=API_KEY, sid=SID))


def test_serve_prints_one_line_and_stops_cleanly_on_sigterm() -> None:
    code = "from ops.simulator import SimulatorConfig as C, serve; serve(C('s3cret', sid='HX1'), port=0)"
    expected = (
        r"simulator listening on (http://127\.0\.0\.1:\d+) \(sid=HX1, e403_rate=0\.0, latency_ms=0\.0\)\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        line = process.stdout.readline()
        listening = re.fullmatch(expected, line)
        served = call(listening[1], "GET", "/_simulator/stats")[0] if listening else None
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)

    assert listening, line + err
    assert (served, process.returncode, out, err) == (200, 0, "", "")
    assert "s3cret" not in line


def test_faults_set_from_the_test_thread_take_effect_and_bad_values_raise(sim: RunningSimulator) -> None:
    sim.set_faults(e403_rate=1.0)
    assert code_of(send(sim, sms(NUMBER))[1]) == "E403"
    with pytest.raises(InputError, match=r"e403_rate=2\.0"):
        sim.set_faults(e403_rate=2.0)
    sim.set_faults(e403_rate=0.0)
    assert send(sim, sms(NUMBER))[0] == 200
