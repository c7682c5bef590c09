import msgspec
import pytest

from schemas.error_codes import CATALOGUE, CodeKind
from schemas.errors import (
    AccountFault,
    AmbiguousGatewayError,
    GatewayUnreachable,
    PermanentGatewayError,
    TransientGatewayError,
)
from worker.gateway.replies import parse_reply, parse_status_reply

SUCCESS = {
    "body": "Hello",
    "createdDateTime": "2021-09-13 06:47:44+05:30",
    "id": "be4-1",
    "sms": [
        {"body": "Hello", "from": "KLRHXA", "message_id": "be4-1:0", "recepient": "919000000001"},
        {"body": "Hello", "from": "KLRHXA", "message_id": "be4-1:1", "recipient": "919000000002"},
    ],
    "source": "API",
    "type": "TXN",
}


def body(value) -> bytes:
    return msgspec.json.encode(value)


def nested(code: str) -> bytes:
    return body({"error": {"code": code, "type": "VALIDATION_ERROR", "parameter": "sms", "message": "m"}})


def flat(code: str) -> bytes:
    return body({"code": code, "message": "m", "error": {"time": "m"}})


def test_success_reply_gives_message_ids_with_either_spelling_of_recipient():
    accepted = parse_reply(200, body(SUCCESS))
    assert [(s.message_id, s.number) for s in accepted] == [
        ("be4-1:0", "919000000001"),
        ("be4-1:1", "919000000002"),
    ]


@pytest.mark.parametrize("shape", [nested, flat])
@pytest.mark.parametrize("status", [200, 400, 500])
def test_e403_is_transient_in_either_shape_whatever_the_status(shape, status):
    with pytest.raises(TransientGatewayError) as caught:
        parse_reply(status, shape("E403"))
    assert caught.value.code == "E403"


@pytest.mark.parametrize(
    ("shape", "code"), [(nested, "E700"), (nested, "E708"), (flat, "E402"), (flat, "E401")]
)
@pytest.mark.parametrize("status", [200, 400, 503])
def test_documented_validation_codes_are_permanent_whatever_the_status(shape, code, status):
    with pytest.raises(PermanentGatewayError) as caught:
        parse_reply(status, shape(code))
    assert caught.value.code == code


@pytest.mark.parametrize("status", [429, 502, 503])
def test_throttling_and_unavailable_statuses_without_a_code_are_transient(status):
    with pytest.raises(TransientGatewayError) as caught:
        parse_reply(status, b"<html>busy</html>")
    assert caught.value.code == f"HTTP{status}"


@pytest.mark.parametrize(("status", "reply"), [(504, b""), (500, b"oops"), (200, b"not json"), (200, b"{}")])
def test_replies_that_may_have_been_processed_are_ambiguous(status, reply):
    with pytest.raises(AmbiguousGatewayError):
        parse_reply(status, reply)


def test_unknown_code_falls_back_to_the_status():
    with pytest.raises(PermanentGatewayError) as caught:
        parse_reply(422, body({"code": "E999", "message": "something new"}))
    assert caught.value.code == "E999"


@pytest.mark.parametrize(
    ("status", "reply"),
    [
        (401, body({"code": "UNAUTHORIZED", "message": "bad key"})),
        (403, b"<html>Forbidden</html>"),
        (403, body({"code": "E403", "message": "try again"})),  # the status decides, whatever the body
        (401, b""),
    ],
)
def test_a_refused_api_key_is_an_account_fault_whatever_the_body(status, reply):
    with pytest.raises(AccountFault) as caught:
        parse_reply(status, reply)
    assert caught.value.code == "UNAUTHORIZED"
    assert str(status) in caught.value.message


@pytest.mark.parametrize("status", [502, 503])
def test_an_unavailable_gateway_is_unreachable_and_still_retried(status):
    with pytest.raises(GatewayUnreachable) as caught:
        parse_reply(status, b"<html>Bad gateway</html>")
    assert isinstance(caught.value, TransientGatewayError)


def test_throttling_is_transient_but_not_an_outage():
    with pytest.raises(TransientGatewayError) as caught:
        parse_reply(429, b"")
    assert not isinstance(caught.value, GatewayUnreachable)


def test_catalogue_marks_only_e403_transient_and_the_acceptance_codes_success():
    transient = {code for code, entry in CATALOGUE.items() if entry.kind is CodeKind.TRANSIENT}
    success = {code for code, entry in CATALOGUE.items() if entry.kind is CodeKind.SUCCESS}
    assert transient == {"E403"}
    assert success == {"E100", "E101", "E620"}
    assert {"E700", "E703", "E708", "E401", "E402", "E604"} <= CATALOGUE.keys()


def test_a_flash_success_reads_its_data_and_its_empty_error_object_is_no_error():
    reply = {"id": "648-1", "sender": "KLRHXA", "type": "MKT", "flash": 1, "body": "Hi", "totalCount": 1,
             "data": [{"message_id": "648-1:1", "recipient": "919000000001"}],
             "dlrurl": None, "error": {}}  # fmt: skip
    [accepted] = parse_reply(200, body(reply))
    assert (accepted.message_id, accepted.number) == ("648-1:1", "919000000001")


def test_the_status_querys_answer_lists_the_messages_kaleyra_knows():
    answer = {"data": [{"campaign_id": "be4-1:0", "status": "Delivered", "status_details": "DELIVERED"}],
              "error": {}}  # fmt: skip

    (known,) = parse_status_reply(200, body(answer))

    assert (known.campaign_id, known.status, known.status_details) == ("be4-1:0", "Delivered", "DELIVERED")


@pytest.mark.parametrize(
    ("status", "reply", "error"),
    [
        (401, b"", AccountFault),
        (404, b"not found", AccountFault),
        (503, b"unavailable", GatewayUnreachable),
        (400, b'{"data": [], "error": {"message_ids": "missing or empty"}}', PermanentGatewayError),
        (200, b"<html>", AmbiguousGatewayError),
    ],
)
def test_a_status_query_error_is_classified_as_a_sends_is(status, reply, error):
    with pytest.raises(error):
        parse_status_reply(status, reply)


def test_an_odd_item_of_the_status_querys_answer_is_left_out_and_the_others_read():
    answer = {"data": [{"campaign_id": "r:0", "status": None}, {"campaign_id": "r:1", "status": "Delivered",
              "status_details": "DELIVERED"}, "junk"], "error": {}}  # fmt: skip
    (known,) = parse_status_reply(200, msgspec.json.encode(answer))
    assert (known.campaign_id, known.status) == ("r:1", "Delivered")
