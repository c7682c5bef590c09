"""De-duplicate recipients by number: in this process's memory up to `SEEN_IN_MEMORY_MAX` numbers, then
in a Redis set, so the producer's memory stays bounded whatever the file's size."""

from __future__ import annotations

from collections.abc import Sequence

from redis_model.publishing import PublishingStore
from schemas.campaign import Recipient

# Duplicates are found in memory up to this many numbers (about 130 MB), in Redis past them: in
# memory the look-up is far cheaper than Redis's, and it costs Redis nothing.
SEEN_IN_MEMORY_MAX = 2_000_000


class SeenNumbers:
    """The numbers of a campaign published so far: in memory, as integers (an E.164 number is `+` and
    digits with no leading zero), until `SEEN_IN_MEMORY_MAX`; then moved to the store's seen set,
    which finds the repeats of the rest. A duplicate is kept (its number and line) but not the line it
    repeats, which would take a number -> line map in place of the set: the report finds that line."""

    def __init__(self, store: PublishingStore) -> None:
        self.store = store
        self.in_memory: set[int] | None = set()
        self.duplicates = 0

    def split(self, page: list[Recipient]) -> tuple[list[Recipient], list[Recipient]]:
        """(the page's recipients whose numbers are new, those that repeat one); remembers the new."""
        fresh, repeated = split_at(page, self.repeats(page))
        self.duplicates += len(repeated)
        return fresh, repeated

    def repeats(self, page: Sequence[Recipient]) -> list[int]:
        """The 1-based positions, ascending, of the page's numbers seen before (in earlier pages or
        earlier in this one); the others are remembered."""
        numbers = self.in_memory
        if numbers is not None and len(numbers) + len(page) > SEEN_IN_MEMORY_MAX:
            self._move_to_redis(numbers)
            numbers = None
        if numbers is None:
            return self.store.first_seen(page)
        page_numbers = list(map(int, [r.to for r in page]))
        if numbers.isdisjoint(page_numbers):  # the usual page: no Python step per number
            before = len(numbers)
            numbers.update(page_numbers)
            if len(numbers) - before == len(page_numbers):
                return []
            numbers = set()  # the page repeats itself only (all of it is remembered now): find where
        repeats = []
        for position, number in enumerate(page_numbers, 1):
            if number in numbers:
                repeats.append(position)
            else:
                numbers.add(number)
        return repeats

    def _move_to_redis(self, numbers: set[int]) -> None:
        self.in_memory = None
        self.store.add_seen(f"+{number}" for number in numbers)


def split_at(recipients: list[Recipient], positions: list[int]) -> tuple[list[Recipient], list[Recipient]]:
    """(those not at the 1-based `positions`, those at them)."""
    if not positions:
        return recipients, []
    picked = set(positions)
    kept = [r for i, r in enumerate(recipients, 1) if i not in picked]
    return kept, [recipients[i - 1] for i in positions]
