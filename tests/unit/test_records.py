"""Every stored record round-trips, and what older versions stored still decodes.

The bytes below are written out by hand as those versions stored them, not produced by today's
encoders: a field removed or made required would fail here before it fails on a live Redis.
"""

from __future__ import annotations

import pytest

from redis_model import records
from schemas.campaign import (
    CampaignSpec,
    ChunkOutcome,
    InvalidRow,
    Job,
    MessageType,
    Outcome,
    Recipient,
)


def test_a_spec_from_the_first_version_decodes_with_todays_defaults() -> None:
    stored = b'{"campaign_id":"c1","sender":"KLRHXA","type":"MKT","body":"Hi {name}","prefix":"+91"}'
    spec = records.decode_spec(stored)
    assert (spec.campaign_id, spec.type, spec.prefix) == ("c1", MessageType.MKT, "+91")
    assert (spec.on_unknown, spec.expires_at, spec.flash, spec.send_window) == ("hold", None, False, None)


def test_a_job_stored_before_zones_and_fields_decodes() -> None:
    # {"campaign_id": "c1", "index": 0, "recipients": [["+919812345678", 2], ["+919812345679", 3]]}
    stored = (
        b"\x83\xabcampaign_id\xa2c1\xa5index\x00\xaarecipients"
        b"\x92\x92\xad+919812345678\x02\x92\xad+919812345679\x03"
    )
    job = records.decode_job(stored)
    assert job.recipients == [Recipient("+919812345678", 2), Recipient("+919812345679", 3)]
    assert job.zones == ()
    assert job.recipients[0].fields == ()


def test_an_outcome_stored_before_shared_id_prefixes_decodes() -> None:
    stored = b'{"outcome":"submitted","size":2,"message_ids":["4f1a2b3c4d5e6f7a:0",""]}'
    outcome = records.decode_outcome(stored)
    assert outcome.full_message_ids() == ["4f1a2b3c4d5e6f7a:0", ""]
    assert outcome.counts() == {"submitted": 1, "failed": 1}
    assert (outcome.attributed, outcome.republished) == (True, False)


def test_a_failed_outcome_with_its_code_decodes() -> None:
    outcome = records.decode_outcome(b'{"outcome":"failed","size":1000,"code":"E411"}')
    assert (outcome.outcome, outcome.size, outcome.code) == (Outcome.FAILED, 1000, "E411")


def test_an_invalid_row_from_the_first_version_decodes() -> None:
    # [5, "98123", "not a valid number"]
    assert records.decode_invalid_row(b"\x93\x05\xa598123\xb2not a valid number") == InvalidRow(
        5, "98123", "not a valid number"
    )


def test_a_left_out_recipient_from_the_first_version_decodes() -> None:
    # ["+919812345678", 7]
    assert records.decode_left_out(b"\x92\xad+919812345678\x07") == Recipient("+919812345678", 7)


def test_a_waiting_entry_decodes() -> None:
    assert records.decode_waiting(b"1765000000|250") == (1765000000.0, 250)


def test_left_out_recipients_are_stored_without_their_field_values() -> None:
    with_fields = Recipient("+919812345678", 7, ("Asha", "asha@example.com"))
    assert records.decode_left_out(records.encode_left_out(with_fields)) == Recipient("+919812345678", 7)


@pytest.mark.parametrize(
    "record, encode, decode",
    [
        (
            CampaignSpec(campaign_id="c1", sender="KLRHXA", type=MessageType.OTP, body="Code 1234",
                         send_window=(540, 1260), expires_at=1765000000.5),
            records.encode_spec,
            records.decode_spec,
        ),
        (
            Job(campaign_id="c1", index=3, recipients=[Recipient("+14155550100", 9, ("Asha",))],
                zones=("America/Los_Angeles",)),
            records.encode_job,
            records.decode_job,
        ),
        (
            ChunkOutcome.submitted(3, ["4f1a2b3c4d5e6f7a:0", "", "4f1a2b3c4d5e6f7a:2"], attributed=False),
            records.encode_outcome,
            records.decode_outcome,
        ),
        (InvalidRow(12, "'+91 98", "not a valid number for +91"), records.encode_invalid_row,
         records.decode_invalid_row),
    ],
)  # fmt: skip
def test_todays_records_round_trip(record: object, encode, decode) -> None:  # type: ignore[no-untyped-def]
    assert decode(encode(record)) == record


def test_a_waiting_entry_round_trips_to_the_second() -> None:
    assert records.decode_waiting(records.encode_waiting(1765000000.4, 250).encode()) == (1765000000.0, 250)


def test_a_single_message_round_trips_and_leaves_out_what_it_does_not_set() -> None:
    from schemas.message import SingleMessage

    message = SingleMessage(
        to="+919812345678", body="Your order shipped", sender="KLRHXA", type=MessageType.TXN,
        reference="order-42", queued_at=1765000000.25,
    )  # fmt: skip
    encoded = records.encode_message(message)
    assert records.decode_message(encoded) == message
    assert b"template_id" not in encoded


@pytest.mark.parametrize(
    "message_id, found",
    [
        ("txn-1765000000000-0", ("campaigns.txn", "1765000000000-0")),
        ("otp-1765000000000-12", ("campaigns.otp", "1765000000000-12")),
        ("bulk-1-0", ("campaigns", "1-0")),
        ("sms-1765000000000-0", None),
        ("txn-1765000000000", None),
        ("txn--0", None),
        ("txn-١٢-0", None),
        (
            "txn-18446744073709551615-18446744073709551615",
            ("campaigns.txn", "18446744073709551615-18446744073709551615"),
        ),
        ("txn-18446744073709551616-0", None),  # past a stream entry's 64 bits: Redis would refuse it
        ("txn-1-99999999999999999999", None),
        ("txn-" + "9" * 5000 + "-0", None),
        ("", None),
    ],
)
def test_a_message_id_names_its_lane_and_stream_entry(message_id: str, found: tuple[str, str] | None) -> None:
    from redis_model import keys

    entry = keys.message_entry(message_id)
    assert (None if entry is None else (entry[0].queue, entry[1])) == found
    if entry is not None:
        assert keys.message_id(*entry) == message_id
