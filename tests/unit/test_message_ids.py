"""Which recipient each message id of a reply belongs to."""

from __future__ import annotations

from schemas.campaign import Recipient
from schemas.kaleyra import SubmittedSms
from worker.attribution import message_ids_by_recipient

CHUNK = [Recipient("+919000000001", 2), Recipient("+919000000002", 3), Recipient("+919000000003", 4)]


def reply(*pairs: tuple[str, str]) -> list[SubmittedSms]:
    return [SubmittedSms(message_id=m, recepient=n) for m, n in pairs]


def test_a_full_reply_lines_up_by_position():
    ids = message_ids_by_recipient(CHUNK, reply(("a", "x"), ("b", "y"), ("c", "z")))
    assert ids == (["a", "b", "c"], True)


def test_dropped_nodes_are_found_by_number_with_or_without_the_plus():
    ids = message_ids_by_recipient(CHUNK, reply(("a", "919000000001"), ("c", "+919000000003")))
    assert ids == (["a", "", "c"], True)


def test_numbers_that_cannot_be_matched_keep_the_count_but_not_the_attribution():
    ids = message_ids_by_recipient(CHUNK, reply(("a", "9000000001"), ("c", "9000000003")))
    assert ids == (["a", "c", ""], False)
