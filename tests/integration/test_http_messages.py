"""`campaign serve`'s single messages over HTTP: POST one, a batch, GET one; auth and revocation, the
rate per key, idempotency, and every refusal as `{"error": {"code", "message", "field"?}}`."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from campaign.service.config import ServiceConfig
from redis_model import keys
from redis_model.api_keys import ApiKeyStore
from tests.integration.http_served import Served, serving

ORDER_SHIPPED = {"to": "+919812345678", "sender": "KLRHXA", "type": "TXN", "body": "Your order shipped"}


@pytest.fixture
def served(backend, make_settings) -> Iterator[Served]:
    _, key = ApiKeyStore(backend.client).create("orders")
    with serving(backend, make_settings("http://127.0.0.1:9"), ServiceConfig(key_cache_s=0.2)) as running:
        running.key = key
        yield running


def error_of(answer) -> dict:
    assert set(answer.body) == {"error"}, answer.body
    return answer.body["error"]


def test_a_message_is_queued_on_its_lane_and_answers_202_with_its_id(served, backend):
    answer = served.call("POST", "/v1/messages", json_body=ORDER_SHIPPED | {"reference": "order-42"})

    assert answer.status == 202
    assert answer.body["status"] == "queued" and answer.body["id"].startswith("txn-")
    assert backend.client.xlen(keys.message_stream(keys.TXN_LANE)) == 1
    got = served.call("GET", f"/v1/messages/{answer.body['id']}")
    assert got.status == 200
    assert got.body == {"id": answer.body["id"], "status": "queued", "reference": "order-42"}


def test_an_unknown_message_is_404(served):
    for message_id in ("txn-1-0", "nonsense", "txn-99999999999999999999999-0", "txn-18446744073709551616-0"):
        answer = served.call("GET", f"/v1/messages/{message_id}")
        assert answer.status == 404 and error_of(answer)["code"] == "not_found"


@pytest.mark.parametrize(
    "headers, key",
    [
        ({}, None),
        ({}, "ck_not-a-key"),
        ({"Authorization": "Basic abc"}, None),
        ({"Authorization": "Bearer"}, None),
    ],
)
def test_a_request_without_a_known_key_is_401(served, headers, key):
    answer = served.call("POST", "/v1/messages", json_body=ORDER_SHIPPED, headers=headers, key=key)

    assert answer.status == 401 and error_of(answer)["code"] == "unauthorized"
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_key_is_refused_within_the_cache_time(served, backend):
    assert served.call("GET", "/v1/campaigns").status == 200

    ApiKeyStore(backend.client).revoke("orders")
    time.sleep(0.3)  # ServiceConfig(key_cache_s=0.2)

    assert served.call("GET", "/v1/campaigns").status == 401


def test_health_and_the_description_need_no_key(served):
    assert served.call("GET", "/healthz", key=None).body == {"status": "ok"}
    assert served.call("GET", "/readyz", key=None).body == {"status": "ready"}
    assert served.call("GET", "/openapi.json", key=None).body["openapi"].startswith("3.1")


def test_a_key_past_its_rate_gets_429_with_retry_after(backend, make_settings):
    _, key = ApiKeyStore(backend.client).create("slow", rate=2)
    with serving(backend, make_settings("http://127.0.0.1:9")) as served:
        statuses = [served.call("POST", "/v1/messages", json_body=ORDER_SHIPPED, key=key) for _ in range(3)]

    assert [a.status for a in statuses] == [202, 202, 429]
    assert error_of(statuses[2])["code"] == "rate_limited"
    assert int(statuses[2].headers["Retry-After"]) >= 1
    assert backend.client.xlen(keys.message_stream(keys.TXN_LANE)) == 2


def test_the_same_idempotency_key_and_body_answer_the_first_receipt_and_queue_nothing_more(served, backend):
    first, again = (
        served.call("POST", "/v1/messages", json_body=ORDER_SHIPPED, headers={"Idempotency-Key": "o-42"})
        for _ in range(2)
    )

    assert first.status == again.status == 202 and first.body == again.body
    assert backend.client.xlen(keys.message_stream(keys.TXN_LANE)) == 1


def test_the_same_idempotency_key_with_another_body_is_409(served, backend):
    served.call("POST", "/v1/messages", json_body=ORDER_SHIPPED, headers={"Idempotency-Key": "o-42"})
    other = ORDER_SHIPPED | {"body": "Your order is late"}

    answer = served.call("POST", "/v1/messages", json_body=other, headers={"Idempotency-Key": "o-42"})

    assert answer.status == 409
    assert (
        error_of(answer)["code"] == "idempotency_conflict" and error_of(answer)["field"] == "Idempotency-Key"
    )
    assert backend.client.xlen(keys.message_stream(keys.TXN_LANE)) == 1


def test_idempotency_keys_are_scoped_to_the_api_key(served, backend):
    _, other_key = ApiKeyStore(backend.client).create("billing")
    headers = {"Idempotency-Key": "o-42"}

    first = served.call("POST", "/v1/messages", json_body=ORDER_SHIPPED, headers=headers)
    second = served.call("POST", "/v1/messages", json_body=ORDER_SHIPPED, headers=headers, key=other_key)

    assert first.body["id"] != second.body["id"]


@pytest.mark.parametrize(
    "body, code, field",
    [
        (ORDER_SHIPPED | {"colour": "red"}, "invalid_request", "colour"),
        (ORDER_SHIPPED | {"to": 919812345678}, "invalid_request", "to"),
        ({k: v for k, v in ORDER_SHIPPED.items() if k != "sender"}, "invalid_request", "sender"),
        (ORDER_SHIPPED | {"to": "12345"}, "invalid_request", "to"),
        (ORDER_SHIPPED | {"type": "XYZ"}, "invalid_request", "type"),
        (ORDER_SHIPPED | {"unicode": "2"}, "invalid_request", "unicode"),
        (ORDER_SHIPPED | {"template_id": "bad id!"}, "invalid_request", "template_id"),
        ([1, 2], "invalid_request", None),
    ],
)
def test_a_refused_message_is_400_naming_its_field(served, backend, body, code, field):
    answer = served.call("POST", "/v1/messages", json_body=body)

    assert answer.status == 400
    assert error_of(answer)["code"] == code and error_of(answer).get("field") == field
    assert backend.client.xlen(keys.message_stream(keys.TXN_LANE)) == 0


def test_bad_json_a_wrong_content_type_and_an_oversized_body_are_refused(backend, make_settings):
    _, key = ApiKeyStore(backend.client).create("orders")
    with serving(backend, make_settings("http://127.0.0.1:9"), ServiceConfig(max_json_bytes=1000)) as served:
        served.key = key
        not_json = served.call(
            "POST", "/v1/messages", data=b"{to:", headers={"Content-Type": "application/json"}
        )
        text = served.call("POST", "/v1/messages", data=b"to=1", headers={"Content-Type": "text/plain"})
        big = ORDER_SHIPPED | {"body": "x" * 2000}
        oversized = served.call("POST", "/v1/messages", json_body=big)

    assert (not_json.status, error_of(not_json)["code"]) == (400, "invalid_json")
    assert (text.status, error_of(text)["code"]) == (415, "unsupported_media_type")
    assert (oversized.status, error_of(oversized)["code"]) == (413, "payload_too_large")


def test_an_unknown_path_and_a_wrong_method_answer_json(served):
    assert error_of(served.call("GET", "/v2/nothing"))["code"] == "not_found"
    answer = served.call("DELETE", "/v1/messages")
    assert answer.status == 405 and error_of(answer)["code"] == "method_not_allowed"


def test_a_batch_answers_a_result_per_item_and_queues_the_good_ones(served, backend):
    batch = [ORDER_SHIPPED, ORDER_SHIPPED | {"to": "12345"}, {"to": 1}, ORDER_SHIPPED | {"type": "OTP"}]

    answer = served.call("POST", "/v1/messages/batch", json_body={"messages": batch})

    assert answer.status == 202
    assert (answer.body["queued"], answer.body["refused"]) == (2, 2)
    first, bad_number, bad_type, otp = answer.body["results"]
    assert first["status"] == "queued" and first["id"].startswith("txn-")
    assert bad_number["error"]["field"] == "messages[1].to"
    assert bad_type["error"]["field"] == "messages[2].to" and bad_type["index"] == 2
    assert otp["id"].startswith("otp-")
    assert backend.client.xlen(keys.message_stream(keys.TXN_LANE)) == 1
    assert backend.client.xlen(keys.message_stream(keys.OTP_LANE)) == 1


@pytest.mark.parametrize("body", [{"messages": []}, {"messages": [ORDER_SHIPPED] * 1001}, {"items": []}])
def test_an_empty_an_oversized_or_a_misnamed_batch_is_400(served, body):
    answer = served.call("POST", "/v1/messages/batch", json_body=body)

    assert answer.status == 400 and error_of(answer)["code"] == "invalid_request"


def test_a_bad_idempotency_key_is_400_naming_the_header(served):
    answer = served.call("POST", "/v1/messages", json_body=ORDER_SHIPPED, headers={"Idempotency-Key": "a\tb"})

    assert answer.status == 400 and error_of(answer)["field"] == "Idempotency-Key"


def test_a_batch_refuses_an_idempotency_key(served):
    answer = served.call(
        "POST",
        "/v1/messages/batch",
        json_body={"messages": [ORDER_SHIPPED]},
        headers={"Idempotency-Key": "k"},
    )

    assert answer.status == 400 and error_of(answer)["field"] == "Idempotency-Key"


def test_a_message_posted_is_sent_by_a_worker_and_shows_submitted(
    backend, simulator, start_worker, make_settings
):
    """End to end: POST /v1/messages, a worker, the gateway simulator, then GET /v1/messages/{id}."""
    settings = make_settings(simulator.base_url)
    _, key = ApiKeyStore(backend.client).create("orders")
    start_worker(settings)
    with serving(backend, settings) as served:
        served.key = key
        message_id = served.call("POST", "/v1/messages", json_body=ORDER_SHIPPED).body["id"]
        deadline = time.monotonic() + 20
        while (state := served.call("GET", f"/v1/messages/{message_id}").body)["status"] != "submitted":
            assert time.monotonic() < deadline, state
            time.sleep(0.02)

    assert state["message_id"] == simulator.record.messages[0].message_id
    assert [m.to for m in simulator.record.messages] == [ORDER_SHIPPED["to"]]
