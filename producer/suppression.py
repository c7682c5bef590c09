"""The account's suppression list: numbers marketing campaigns never send to, normalised as in
sending, applied at publish.

One Redis set per account (`KALEYRA_SID`). An import is staged in a set of its own and merged
page by page once the whole file has been read, so a file refused half-way, or one with more
invalid numbers than allowed (CAMPAIGN_MAX_INVALID, `--max-invalid`), adds nothing.

A list this version creates is marked with its format (`keys.suppression_format`). A list without
the mark was written by an older normaliser, which stored some numbers in forms never produced now
(`+49015123456789` for `+49 (0)15123456789`; `+3931234567` for the Italian mobile `3931234567`
read as carrying +39), so that the same people written today would not be found: marketing is
refused against it until `renormalise` has added every entry's current forms.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator

import msgspec
import redis

from producer.invalid import Allowance, Tally, printable
from producer.numbering import country_code_of
from producer.numbers import InvalidNumber, NumberNormaliser
from redis_model import keys
from schemas.campaign import InvalidRow
from schemas.errors import InputError

PAGE = 5000
SHOWN_INVALID_ROWS = 20
FORMAT = "2"  # numbers as libphonenumber reads them; a list without a format is older


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
    return _add(client, sid, normalised) if normalised else 0


def _add(client: redis.Redis, sid: str, numbers: list[str]) -> int:
    """SADD, marking the list with this version's format when this creates it (an older list stays
    unmarked: its old entries are still there)."""
    target = keys.suppression_list(sid)

    def write(tx: redis.client.Pipeline) -> None:
        created = not tx.exists(target)  # watched: a list created meanwhile retries
        tx.multi()
        if created:
            tx.set(keys.suppression_format(sid), FORMAT)
        tx.sadd(target, *numbers)

    replies = client.transaction(write, target)
    assert replies is not None  # the MULTI's replies (None only with value_from_callable)
    return int(replies[-1])


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
                page.append(normaliser.normalise(raw))
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
                added += _add(client, sid, merge)
                merge = []
        if merge:
            added += _add(client, sid, merge)
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


def in_use(client: redis.Redis, sid: str) -> bool:
    """Whether the account lists anyone; `InputError` if its list was written by an older version."""
    with client.pipeline(transaction=False) as pipe:
        pipe.exists(keys.suppression_list(sid))
        pipe.get(keys.suppression_format(sid))
        listed, marked = pipe.execute()
    if listed and marked != FORMAT.encode():
        raise InputError(
            f"the suppression list of account {sid or 'default'} was written by an older version; "
            "run `campaign suppress renormalise` first"
        )
    return bool(listed)


class RenormaliseResult(msgspec.Struct, frozen=True, kw_only=True):
    read: int  # numbers listed when it started
    added: int  # forms new to the list


def renormalise(client: redis.Redis, sid: str) -> RenormaliseResult:
    """Add the current forms of every listed number (`_Readings`), a page at a time, then mark the
    list with this version's format. Nothing is removed, and a form's own forms are among its
    number's, so a second run (or one after a stop) adds nothing new."""
    target = keys.suppression_list(sid)
    forms_of = _Readings()
    read = int(client.scard(target))  # SSCAN returns each of them; the forms it adds, maybe
    added = 0
    page: list[str] = []
    for entry in client.sscan_iter(target, count=PAGE):
        page.extend(forms_of(entry.decode()))
        if len(page) >= PAGE:
            added += int(client.sadd(target, *page))
            page = []
    if page:
        added += int(client.sadd(target, *page))
    client.set(keys.suppression_format(sid), FORMAT)
    return RenormaliseResult(read=read, added=added)


class _Readings:
    """The numbers this version may read where an older one stored `entry`, other than the entry:
    the entry read as written (`+49015123456789` -> `+4915123456789`), its digits read as a national
    number of its country (`+3931234567`, from `3931234567` with +39 -> `+393931234567`), and so on
    for each of those. Only valid numbers."""

    def __init__(self) -> None:
        self.as_written = NumberNormaliser(None)
        self.national: dict[str, NumberNormaliser] = {}  # by country calling code

    def __call__(self, entry: str) -> list[str]:
        # A valid number reads as itself or as a longer one (15 digits at most), so this ends.
        found: dict[str, None] = {}
        todo = [entry]
        while todo:
            for form in self._readings(todo.pop()):
                if form != entry and form not in found:
                    found[form] = None
                    todo.append(form)
        return list(found)

    def _readings(self, number: str) -> list[str]:
        readings = [self._read(self.as_written, number)]
        digits = number[1:]
        if number[:1] == "+" and digits.isdigit() and digits.isascii():
            code = country_code_of(digits)
            if code is not None:
                if code not in self.national:
                    self.national[code] = NumberNormaliser("+" + code)
                readings.append(self._read(self.national[code], digits))
        return [reading for reading in readings if reading is not None]

    @staticmethod
    def _read(normaliser: NumberNormaliser, text: str) -> str | None:
        try:
            return normaliser.normalise(text)
        except InvalidNumber:
            return None
