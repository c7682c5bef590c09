"""The account's suppression list: numbers marketing campaigns never send to, normalised as in
sending, applied at publish.

One Redis set per account (`KALEYRA_SID`). An import is staged in a set of its own and merged
page by page once the whole file has been read, so a file refused half-way, or one with more
invalid numbers than allowed (CAMPAIGN_MAX_INVALID, `--max-invalid`), adds nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator

import msgspec
import redis

from producer.invalid import Allowance, Tally, normalise, printable
from producer.numbers import InvalidNumber, NumberNormaliser
from schemas import keys
from schemas.campaign import InvalidRow
from schemas.errors import InputError

PAGE = 5000
SHOWN_INVALID_ROWS = 20


class ImportResult(msgspec.Struct, frozen=True, kw_only=True):
    read: int  # valid rows
    added: int  # numbers new to the list
    invalid: int
    invalid_rows: list[InvalidRow] = []  # the first few


def normalise_all(numbers: Iterable[str], prefix: str | None) -> list[str]:
    """Every number in E.164, or `InputError` naming the first that is not one."""
    normaliser = NumberNormaliser(prefix)
    normalised = []
    for raw in numbers:
        try:
            normalised.append(normaliser.normalise(raw))
        except InvalidNumber as e:
            raise InputError(f"number {raw!r} {e.reason}; nothing was changed") from None
    return normalised


def add(client: redis.Redis, sid: str, numbers: Iterable[str], prefix: str | None) -> int:
    """Numbers added (not already listed)."""
    normalised = normalise_all(numbers, prefix)
    return int(client.sadd(keys.suppression_list(sid), *normalised)) if normalised else 0


def remove(client: redis.Redis, sid: str, numbers: Iterable[str], prefix: str | None) -> int:
    """Numbers removed (that were listed)."""
    normalised = normalise_all(numbers, prefix)
    return int(client.srem(keys.suppression_list(sid), *normalised)) if normalised else 0


def import_rows(
    client: redis.Redis,
    sid: str,
    rows: Iterable[tuple[int, str, object]],
    prefix: str | None,
    allowance: Allowance | None = None,
) -> ImportResult:
    """Add every valid number of `rows` (as `producer.recipients` reads them); invalid ones are skipped,
    unless there are more of them than `allowance` (None: none is refused for it)."""
    target = keys.suppression_list(sid)
    staged = f"{target}:import:{uuid.uuid4().hex}"  # same hash tag: one slot with the list
    normaliser, tally = NumberNormaliser(prefix), Tally(prefix)
    page: list[str] = []
    invalid_rows: list[InvalidRow] = []
    read = 0
    try:
        for line, raw, _ in rows:
            tally.rows += 1
            try:
                page.append(normalise(normaliser, raw))
            except InvalidNumber as e:
                tally.count_invalid(e)
                if len(invalid_rows) < SHOWN_INVALID_ROWS:
                    invalid_rows.append(InvalidRow(line, printable(raw), e.reason))
                continue
            read += 1
            if len(page) >= PAGE:
                client.sadd(staged, *page)
                page = []
        if page:
            client.sadd(staged, *page)
        if allowance is not None:
            tally.refuse_if_over(allowance)
        # Page by page rather than SUNIONSTORE, which would rewrite the whole list in one command.
        added, merge = 0, []
        for number in client.sscan_iter(staged, count=PAGE):
            merge.append(number)
            if len(merge) >= PAGE:
                added += int(client.sadd(target, *merge))
                merge = []
        if merge:
            added += int(client.sadd(target, *merge))
    finally:
        client.delete(staged)
    return ImportResult(read=read, added=added, invalid=tally.invalid, invalid_rows=invalid_rows)


def export(client: redis.Redis, sid: str) -> Iterator[str]:
    """Every listed number, in no particular order, without loading the set at once (Redis may
    repeat one while it resizes the set; an import of the export is unaffected)."""
    for number in client.sscan_iter(keys.suppression_list(sid), count=PAGE):
        yield number.decode()


def count(client: redis.Redis, sid: str) -> int:
    return int(client.scard(keys.suppression_list(sid)))
