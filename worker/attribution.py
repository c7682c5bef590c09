"""Which recipient of a chunk each message id of Kaleyra's reply belongs to, and that recipient's line."""

from __future__ import annotations

import operator
from collections.abc import Sequence

from schemas.campaign import Recipient
from schemas.kaleyra import SubmittedSms

_LINE = operator.attrgetter("line")


def lines_of(chunk: Sequence[Recipient], accepted: Sequence[SubmittedSms]) -> list[int | None]:
    """The line of each accepted message's recipient in the campaign's file, matched as
    `message_ids_by_recipient` matches ids: by position in a full reply, else by number (None for a
    number the reply shows in a shape no recipient has)."""
    if len(accepted) == len(chunk):
        return list(map(_LINE, chunk))
    by_number = {recipient.to[1:]: recipient.line for recipient in chunk}
    return [by_number.get(sms.number.lstrip("+")) for sms in accepted]


def message_ids_by_recipient(
    chunk: Sequence[Recipient], accepted: Sequence[SubmittedSms]
) -> tuple[list[str], bool]:
    """One message id per recipient of the chunk, in order, `""` for a node the gateway dropped;
    and whether the ids could be attributed to their recipients.

    Kaleyra answers in request order and leaves dropped nodes out, so a full reply lines up
    by position; otherwise replies are matched by number. Either way exactly `len(accepted)`
    ids are non-empty, so the counts derived from them match what the gateway accepted.
    """
    if len(accepted) == len(chunk):
        return [sms.message_id for sms in accepted], True
    by_number = {sms.number.lstrip("+"): sms.message_id for sms in accepted}
    ids = [by_number.get(r.to[1:], "") for r in chunk]
    if sum(1 for i in ids if i) != len(accepted):
        # Numbers in a shape we cannot match: keep the counts right, give up on attribution.
        return [sms.message_id for sms in accepted] + [""] * (len(chunk) - len(accepted)), False
    return ids, True
