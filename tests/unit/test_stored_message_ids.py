"""A submitted chunk's message ids are stored without the prefix they share, and read back whole."""

from __future__ import annotations

import uuid

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from schemas.campaign import ChunkOutcome, Outcome

_codec = msgspec.json.Encoder(), msgspec.json.Decoder(ChunkOutcome)


def stored(outcome: ChunkOutcome) -> ChunkOutcome:
    encoder, decoder = _codec
    return decoder.decode(encoder.encode(outcome))


def kaleyra_ids(count: int) -> list[str]:
    batch = str(uuid.uuid4())
    return [f"{batch}:{i}" for i in range(count)]


def test_kaleyra_ids_keep_only_their_position_and_come_back_whole():
    ids = kaleyra_ids(1000)
    ids[7] = ""  # a node the gateway dropped

    outcome = stored(ChunkOutcome.submitted(1000, ids, code="E406"))

    assert outcome.id_prefix == ids[0][:-1] and outcome.message_id_ends[5:9] == ["5", "6", "", "8"]
    assert outcome.full_message_ids() == ids
    assert outcome.counts() == {"submitted": 999, "failed": 1}
    full = ChunkOutcome(outcome=Outcome.SUBMITTED, size=1000, code="E406", message_ids=ids)
    assert len(_codec[0].encode(outcome)) < len(_codec[0].encode(full)) / 5


def test_ids_with_little_in_common_are_stored_whole():
    ids = ["abc:1", "abd:2", "", "zz"]

    outcome = stored(ChunkOutcome.submitted(4, ids))

    assert (outcome.id_prefix, outcome.message_id_ends, outcome.message_ids) == ("", [], ids)
    assert outcome.full_message_ids() == ids


def test_an_id_that_is_all_the_shared_start_keeps_a_character_of_it():
    ids = ["0123456789:1", "0123456789", "", "0123456789:2"]

    outcome = stored(ChunkOutcome.submitted(4, ids))

    assert (outcome.id_prefix, outcome.message_id_ends) == ("012345678", ["9:1", "9", "", "9:2"])
    assert outcome.full_message_ids() == ids


class OutcomeBefore(msgspec.Struct):
    """The record as code from before `id_prefix` reads it."""

    outcome: str
    size: int
    message_ids: list[str] = []


def test_code_from_before_finds_no_ids_in_an_outcome_stored_with_a_prefix_rather_than_wrong_ones():
    raw = _codec[0].encode(ChunkOutcome.submitted(3, kaleyra_ids(3)))

    assert msgspec.json.decode(raw, type=OutcomeBefore).message_ids == []


def test_a_reply_of_more_messages_than_the_chunk_keeps_the_chunk_size():
    # Numbers that could not be matched: the ids are kept in reply order, however many.
    outcome = ChunkOutcome.submitted(2, kaleyra_ids(3), attributed=False)

    assert outcome.size == 2 and len(outcome.full_message_ids()) == 3
    assert outcome.counts() == {"submitted": 2, "failed": 0}


def test_an_outcome_stored_before_prefixes_reads_as_it_was():
    ids = kaleyra_ids(3)
    raw = msgspec.json.encode({"outcome": "submitted", "size": 3, "message_ids": ids})

    assert _codec[1].decode(raw).full_message_ids() == ids


@given(st.lists(st.one_of(st.just(""), st.text(min_size=1, max_size=12)), max_size=40),
       st.text(max_size=20))  # fmt: skip
def test_any_ids_come_back_as_they_were_with_a_dropped_node_still_empty(ids, shared):
    ids = [shared + i if i else "" for i in ids]

    outcome = stored(ChunkOutcome.submitted(len(ids), ids, attributed=False))

    assert outcome.full_message_ids() == ids
    stored_ids = outcome.message_id_ends if outcome.id_prefix else outcome.message_ids
    assert all(stored_ids[n] for n, i in enumerate(ids) if i)  # a real id never reads as dropped
    assert outcome.counts()["failed"] == ids.count("") and outcome.attributed is False
