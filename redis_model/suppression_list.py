"""The account's suppression list: a set of E.164 numbers, the mark of their format, and staged imports."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import redis

from redis_model import keys

FORMAT = "2"  # numbers as libphonenumber reads them; a list without a format is older
PAGE = 5000


class ListState(NamedTuple):
    listed: bool  # the list holds a number
    current: bool  # marked with this version's FORMAT


class SuppressionList:
    """One account's list (`keys.suppression_list`), as the `campaign suppress` commands change it."""

    def __init__(self, client: redis.Redis, sid: str) -> None:
        self.client = client
        self.sid = sid
        self.key = keys.suppression_list(sid)

    def add(self, numbers: Sequence[str | bytes]) -> int:
        """SADD; numbers new to the list. Marks the list with this version's format when this creates it
        (an older list stays unmarked: its old entries are still there)."""

        def write(tx: redis.client.Pipeline) -> None:
            created = not tx.exists(self.key)  # watched: a list created meanwhile retries
            tx.multi()
            if created:
                tx.set(keys.suppression_format(self.sid), FORMAT)
            tx.sadd(self.key, *numbers)

        replies = self.client.transaction(write, self.key)
        assert replies is not None  # the MULTI's replies (None only with value_from_callable)
        return int(replies[-1])

    def add_forms(self, numbers: Sequence[str]) -> int:
        """SADD, the format mark left as it is (renormalise adds to a list that exists); numbers new to it."""
        return int(self.client.sadd(self.key, *numbers))

    def remove(self, numbers: Sequence[str]) -> int:
        """Numbers removed (that were listed)."""
        return int(self.client.srem(self.key, *numbers))

    def count(self) -> int:
        return int(self.client.scard(self.key))

    def numbers(self, *, page: int = PAGE) -> Iterator[str]:
        """Every listed number, in no particular order, without loading the set at once (Redis may repeat
        one while it resizes the set)."""
        for number in self.client.sscan_iter(self.key, count=page):
            yield number.decode()

    def state(self) -> ListState:
        """Whether the list holds anyone, and whether it is in this version's format, in one round trip."""
        with self.client.pipeline(transaction=False) as pipe:
            pipe.exists(self.key)
            pipe.get(keys.suppression_format(self.sid))
            listed, marked = pipe.execute()
        return ListState(listed=bool(listed), current=marked == FORMAT.encode())

    def mark_current(self) -> None:
        """Mark the list as holding every number in this version's format."""
        self.client.set(keys.suppression_format(self.sid), FORMAT)

    def staged_import(self) -> StagedImport:
        """A set of its own for an import's numbers, merged into the list once the whole file is read."""
        return StagedImport(self)


class StagedImport:
    """An import's numbers, kept apart from the list until `merge`; `discard` it in every case."""

    def __init__(self, listed: SuppressionList) -> None:
        self.listed = listed
        self.key = keys.suppression_import(listed.sid, uuid.uuid4().hex)

    def add(self, numbers: Sequence[str]) -> None:
        self.listed.client.sadd(self.key, *numbers)

    def merge(self, *, page: int = PAGE) -> int:
        """Add the staged numbers to the list page by page (SUNIONSTORE would rewrite the whole list in
        one command); numbers new to it."""
        added, merge = 0, []
        for number in self.listed.client.sscan_iter(self.key, count=page):
            merge.append(number)
            if len(merge) >= page:
                added += self.listed.add(merge)
                merge = []
        if merge:
            added += self.listed.add(merge)
        return added

    def discard(self) -> None:
        self.listed.client.delete(self.key)
