"""Single messages in one `/sms/json` request: shared fields once at the top level, the others per node."""

from __future__ import annotations

import msgspec

from schemas.campaign import MessageType
from schemas.message import SingleMessage
from schemas.settings import Settings
from worker.payload import encode_messages, max_nodes

SETTINGS = Settings(api_key="k", sid="S", default_unicode="0")


def _message(to: str, body: str, sender: str = "SHOP", **fields) -> SingleMessage:
    return SingleMessage(to=to, body=body, sender=sender, type=MessageType.TXN, **fields)


def test_fields_the_messages_share_go_once_and_those_that_differ_in_each_node():
    request = msgspec.json.decode(
        encode_messages(
            [_message("+911", "Hi A", template_id="T1"), _message("+912", "Hi B", template_id="T1")], SETTINGS
        )
    )

    assert request["sms"] == [{"to": "+911", "body": "Hi A"}, {"to": "+912", "body": "Hi B"}]
    assert (request["from"], request["template_id"], request["type"]) == ("SHOP", "T1", "TXN")
    assert "body" not in request


def test_the_unicode_default_applies_and_a_body_needing_ucs2_is_never_sent_as_0():
    request = msgspec.json.decode(
        encode_messages([_message("+911", "plain"), _message("+912", "नमस्ते")], SETTINGS)
    )

    assert [node["unicode"] for node in request["sms"]] == ["0", "1"]


def test_otp_goes_one_to_a_request_and_txn_a_hundred():
    assert (max_nodes(MessageType.OTP), max_nodes(MessageType.TXN), max_nodes(MessageType.MKT)) == (
        1,
        100,
        1000,
    )
