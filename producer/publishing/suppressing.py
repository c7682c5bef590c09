"""Leave out the recipients on the account's suppression list: marketing opt-outs (OTP and transactional
messages still go)."""

from __future__ import annotations

from producer.publishing.dedup import split_at
from redis_model.publishing import PublishingStore
from schemas.campaign import Recipient


class Suppressing:
    """Looks a page of numbers up in the account's list (outside the campaign's hash slot: a script
    of its own, not part of de-duplication's)."""

    def __init__(self, store: PublishingStore, sid: str) -> None:
        self.store, self.sid = store, sid
        self.suppressed = 0

    def split(self, recipients: list[Recipient]) -> tuple[list[Recipient], list[Recipient]]:
        """(those to send to, those left out)."""
        kept, left_out = split_at(recipients, self.store.listed(self.sid, recipients))
        self.suppressed += len(left_out)
        return kept, left_out
