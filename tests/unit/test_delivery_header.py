"""The delivery string's header: its nodes for the poller, and headers written before them."""

import pytest

from redis_model.delivery import (
    CAMPAIGN,
    HEADER_BYTES,
    MESSAGES,
    RECORD_BYTES,
    Header,
    decode_header,
    encode_header,
    last_position,
    unreported_positions,
)
from schemas.delivery import DeliveryStatus


def test_a_header_keeps_its_nodes_and_last_position():
    header = Header(CAMPAIGN, 1_800_000_000, "a" * 32, 3, 5000, nodes=998, last_position=999)

    raw = encode_header(header)

    assert len(raw) == HEADER_BYTES and decode_header(raw) == header


def test_a_header_written_before_the_nodes_were_stored_reads_as_unknown_nodes():
    old = (b"c" + (1_800_000_000).to_bytes(4, "big") + (3).to_bytes(4, "big") + (5000).to_bytes(4, "big")
           + bytes([2]) + b"c1").ljust(HEADER_BYTES, b"\0")  # fmt: skip

    assert decode_header(old) == Header(CAMPAIGN, 1_800_000_000, "c1", 3, 5000, nodes=0, last_position=0)


def test_a_campaign_id_too_long_for_the_header_is_refused():
    with pytest.raises(ValueError, match="does not fit"):
        encode_header(Header(CAMPAIGN, 0, "x" * 47))


def test_a_requests_last_position_is_its_last_id_that_is_not_dropped():
    assert last_position(["r:0", "", "r:2", "r:3", ""]) == 3
    assert last_position(["0", "", "7"], prefix="r:") == 7
    assert last_position(["", ""]) == 0


def test_the_positions_without_a_final_record_include_gaps_and_missing_records():
    header = Header(MESSAGES, 0, nodes=3, last_position=3)
    raw = bytearray(encode_header(header) + bytes(RECORD_BYTES * 3))
    raw[HEADER_BYTES + 1 * RECORD_BYTES] = int(DeliveryStatus.DELIVERED)
    raw[HEADER_BYTES + 2 * RECORD_BYTES] = int(DeliveryStatus.SENT)

    assert unreported_positions(bytes(raw), header) == ([0, 2, 3], 1)
