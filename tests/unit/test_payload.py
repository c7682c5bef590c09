import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.campaign import CampaignSpec, MessageType, Recipient
from schemas.kaleyra import SmsJsonRequest, SmsNode
from schemas.settings import Settings
from worker.payload import PayloadBuilder, chunk_at, chunk_size, resolve_unicode

# The sample request of sms-json-xml.md, field for field.
DOCUMENTED_SAMPLE = {
    "channel": "SMS",
    "type": "TXN",
    "source": "API",
    "prefix": "+1",
    "time": "2021-02-02T12:58:00+05:30",
    "from": "+91XXXXXXXXXX",
    "body": "Hello! This is the request to send SMS in JSON format.",
    "template_id": "912XXXXXXXX312",
    "entity_id": "1356XXXXXXXX4312",
    "unicode": "0",
    "callback_profile_id": "SG_074aXX38-2XXd-4e53-b5XX-b60c5XXXXXc5",
    "sms": [
        {
            "to": "+91XXXXXXXXXX",
            "from": "+91XXXXXXXXXX",
            "body": "This is the SMS JSON format.",
            "template_id": "912XXXXXXXXX12",
            "entity_id": "1356XXXXXXXXX312",
            "unicode": "0",
            "callback_profile_id": "SG_074aXX38-2XXd-4e53-b5XX-b60c5XXXXXc5",
        }
    ],
}


def spec(**overrides) -> CampaignSpec:
    fields = {"campaign_id": "c1", "sender": "KLRHXA", "type": MessageType.MKT, "body": "Hello"}
    return CampaignSpec(**(fields | overrides))


def recipients(count: int) -> list[Recipient]:
    return [Recipient(f"+9190000{i:05d}", i + 2) for i in range(count)]


def test_request_encodes_to_the_documented_sample():
    request = msgspec.convert(DOCUMENTED_SAMPLE, SmsJsonRequest, from_attributes=False)
    assert msgspec.json.decode(msgspec.json.encode(request)) == DOCUMENTED_SAMPLE


def test_request_omits_fields_that_are_not_set():
    request = SmsJsonRequest(sms=[SmsNode(to="+919000000001")], body="Hi", from_="KLRHXA")
    assert msgspec.json.decode(msgspec.json.encode(request)) == {
        "body": "Hi",
        "from": "KLRHXA",
        "sms": [{"to": "+919000000001"}],
    }


def test_shared_body_is_sent_once_at_the_top_level():
    builder = PayloadBuilder(spec(prefix="+91", template_id="1107"), Settings())
    payload = msgspec.json.decode(builder.encode(recipients(3)))
    assert payload["channel"] == "SMS"
    assert payload["type"] == "MKT"
    assert payload["body"] == "Hello"
    assert payload["from"] == "KLRHXA"
    assert payload["prefix"] == "+91"
    assert payload["template_id"] == "1107"
    assert payload["sms"] == [{"to": r.to} for r in recipients(3)]


def test_default_prefix_applies_when_the_campaign_names_none():
    builder = PayloadBuilder(spec(), Settings(default_prefix="+44"))
    assert msgspec.json.decode(builder.encode(recipients(1)))["prefix"] == "+44"


@pytest.mark.parametrize(
    ("campaign_flag", "default", "body", "expected"),
    [
        (None, "auto", "Hello", "auto"),
        (None, "0", "Hello", "0"),
        (None, "1", "Hello", "1"),
        ("0", "1", "Hello", "0"),
        ("1", "0", "Hello", "1"),
        (None, "0", "नमस्ते", "1"),  # a body needing UCS-2 is never sent with unicode 0
        (None, "0", "Price: 10€ {ok}", "0"),  # GSM-7 extension characters are still GSM-7
    ],
)
def test_unicode_flag_resolution(campaign_flag, default, body, expected):
    assert (
        resolve_unicode(spec(unicode=campaign_flag, body=body), Settings(default_unicode=default)) == expected
    )


def test_otp_is_sent_one_node_per_request():
    assert chunk_size(spec(type=MessageType.OTP), Settings(chunk_size=1000)) == 1


def test_txn_is_sent_at_most_100_nodes_per_request():
    assert chunk_size(spec(type=MessageType.TXN), Settings(chunk_size=1000)) == 100
    assert chunk_size(spec(type=MessageType.TXN), Settings(chunk_size=40)) == 40


@pytest.mark.parametrize("message_type", [MessageType.MKT, MessageType.DEFAULT, MessageType.TXND])
def test_bulk_types_use_the_configured_chunk_size(message_type):
    assert chunk_size(spec(type=message_type), Settings(chunk_size=500)) == 500
    assert chunk_size(spec(type=message_type), Settings()) == 1000


def test_chunks_hold_at_most_the_size_and_keep_every_recipient_in_order():
    people = recipients(2501)
    made = [chunk_at(people, offset, 1000) for offset in (0, 1000, 2000)]
    assert [len(c) for c in made] == [1000, 1000, 501]
    assert [r for c in made for r in c] == people


def test_request_refuses_more_than_1000_nodes():
    nodes = [{"to": r.to} for r in recipients(1001)]
    with pytest.raises(msgspec.ValidationError, match="length <= 1000"):
        msgspec.convert({"sms": nodes}, SmsJsonRequest)


def test_a_personalised_body_goes_in_each_node_and_not_at_the_top_level():
    builder = PayloadBuilder(spec(body="Hi {name|there}, {{{points}}} pts"), Settings())
    chunk = [Recipient("+919000000001", 2, ("Asha", "12")), Recipient("+919000000002", 3, ("there", "0"))]
    payload = msgspec.json.decode(builder.encode(chunk))
    assert "body" not in payload
    assert payload["sms"] == [
        {"to": "+919000000001", "body": "Hi Asha, {12} pts"},
        {"to": "+919000000002", "body": "Hi there, {0} pts"},
    ]


def test_escaped_braces_in_a_shared_body_are_sent_as_single_braces():
    payload = msgspec.json.decode(PayloadBuilder(spec(body="Use {{code}}"), Settings()).encode(recipients(1)))
    assert payload["body"] == "Use {code}"


def test_under_unicode_0_only_a_node_whose_value_needs_ucs2_is_sent_as_unicode():
    builder = PayloadBuilder(spec(body="Hi {name}", unicode="0"), Settings())
    chunk = [Recipient("+919000000001", 2, ("Asha",)), Recipient("+919000000002", 3, ("Зоя",))]
    nodes = msgspec.json.decode(builder.encode(chunk))["sms"]
    assert [node.get("unicode") for node in nodes] == [None, "1"]


def test_a_scheduled_chunk_carries_kaleyras_time_while_it_is_far_enough_ahead():
    at = "2026-12-02T18:00:00+05:30"
    due = 1796214600.0  # that moment as a Unix time
    builder = PayloadBuilder(spec(at=at), Settings())

    assert builder.schedule(due - 3600) == 0
    assert msgspec.json.decode(builder.encode(recipients(1)))["time"] == at
    # Under 16 minutes ahead Kaleyra could refuse the time (E402): the chunk waits for it instead.
    assert builder.schedule(due - 600) == 600
    assert builder.schedule(due + 5) == 0
    assert "time" not in msgspec.json.decode(builder.encode(recipients(1)))


def test_a_flash_request_always_carries_flash_1_and_one_body_for_its_numbers():
    payload = msgspec.json.decode(PayloadBuilder(spec(flash=True), Settings()).encode(recipients(2)))
    assert payload == {"to": "+919000000000,+919000000001", "sender": "KLRHXA", "type": "MKT",
                       "body": "Hello", "flash": 1, "unicode": "auto"}  # fmt: skip


@given(
    numbers=st.lists(
        st.one_of(st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True), st.text(max_size=5)), max_size=5
    ),
    overrides=st.fixed_dictionaries(
        {},
        optional={
            "prefix": st.just("+91"),
            "unicode": st.sampled_from(["auto", "0", "1"]),
            "template_id": st.just("1107"),
            "entity_id": st.just("1201"),
            "callback_profile_id": st.just("cb-1"),
            "at": st.just("2026-12-02T18:00:00+05:30"),
        },
    ),
)
def test_a_shared_body_request_is_the_bytes_msgspec_writes_for_it_node_by_node(numbers, overrides):
    builder = PayloadBuilder(spec(**overrides), Settings())
    chunk = [Recipient(number, line) for line, number in enumerate(numbers, 2)]
    assert builder.encode(chunk) == msgspec.json.encode(builder.request(chunk))
