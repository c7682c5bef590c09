"""Flash SMS: Kaleyra's `/sms` endpoint with flash=1, in the simulator and through the whole pipeline."""

from __future__ import annotations

import pytest

from producer.spec import build_spec
from schemas.errors import SpecError
from schemas.settings import Settings
from tests.conftest import API_KEY
from tests.integration.test_campaign_flow import events_of, publish_numbers, wait_completed
from tests.integration.test_simulator import call


def flash(simulator, payload):
    headers = {"content-type": "application/json", "api-key": API_KEY}
    return call(simulator.base_url, "POST", "/v1/HXTEST/sms", payload, headers)


def test_the_simulator_answers_a_flash_request_in_the_documented_shape(simulator):
    status, reply = flash(simulator, {"to": "+919000000001,+919000000002", "sender": "KLRHXA", "type": "MKT",
                                "body": "Gate code 4411", "flash": 1})  # fmt: skip

    assert status == 200
    assert (reply["flash"], reply["totalCount"], reply["error"], reply["sender"]) == (1, 2, {}, "KLRHXA")
    assert [d["recipient"] for d in reply["data"]] == ["919000000001", "919000000002"]
    assert [(m.to, m.flash, m.body) for m in simulator.record.messages] == [
        ("+919000000001", True, "Gate code 4411"),
        ("+919000000002", True, "Gate code 4411"),
    ]


def test_without_the_flag_the_sms_endpoint_sends_an_ordinary_sms(simulator):
    status, reply = flash(simulator, {"to": "+919000000001", "sender": "KLRHXA", "type": "MKT", "body": "Hi"})
    assert (status, reply["flash"]) == (200, 0)
    assert [m.flash for m in simulator.record.messages] == [False]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"to": ",".join(f"+9190000{i:05d}" for i in range(101))}, "E405"),
        ({"flash": 2}, "E606"),
        ({"body": ""}, "E601"),
        ({"sender": None}, "E616"),
        ({"to": ""}, "E600"),
        ({"time": "2020-01-01T10:00:00+05:30"}, "E402"),
    ],
)
def test_the_simulator_refuses_what_the_flash_endpoint_refuses(simulator, change, code):
    payload = {"to": "+919000000001", "sender": "KLRHXA", "type": "MKT", "body": "Hi", "flash": 1} | change
    status, reply = flash(simulator, payload)
    assert (status, reply["code"]) == (400, code)
    assert simulator.record.messages == []


def test_a_flash_campaign_goes_through_sms_in_requests_of_at_most_100_numbers(
    backend, simulator, start_worker, make_settings, event_log
):
    settings = make_settings(simulator.base_url)
    broker = start_worker(settings)

    spec = publish_numbers(backend, broker, settings, 250, flash=True)
    status = wait_completed(backend, spec.campaign_id)

    messages = simulator.record.messages
    assert status.submitted == 250 and len({m.to for m in messages}) == 250 and len(messages) == 250
    assert all(m.flash for m in messages)
    assert simulator.record.stats().max_nodes == 100
    logged = {e["message_id"] for e in events_of(event_log) if e["event"] == "sms.submitted"}
    assert logged == {m.message_id for m in messages}


def test_a_personalised_body_cannot_be_flashed():
    with pytest.raises(SpecError, match=r"a personalised body \(\{field\}\) cannot be flashed"):
        build_spec(settings=Settings(), sender="KLRHXA", type="MKT", body="Hi {name}", flash=True)
