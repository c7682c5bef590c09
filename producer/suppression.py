"""The account's suppression list: numbers marketing campaigns never send to, normalised as in
sending, applied at publish.

One Redis set per account (`KALEYRA_SID`). An import is staged in a set of its own and merged
page by page once the whole file has been read, so a file refused half-way, or one with more
invalid numbers than allowed (CAMPAIGN_MAX_INVALID, `--max-invalid`), adds nothing.

A list this version creates is marked with its format (`redis_model.suppression_list.FORMAT`). A
list without the mark was written by an older normaliser, which stored some numbers in forms never
produced now (`+49015123456789` for `+49 (0)15123456789`; `+3931234567` for the Italian mobile
`3931234567` read as carrying +39), so that the same people written today would not be found:
marketing is refused against it until `renormalise` has added every entry's current forms.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import msgspec
import redis

from producer.invalid import Allowance, Tally, printable
from producer.numbering import country_code_of
from producer.numbers import InvalidNumber, NumberNormaliser
from redis_model.suppression_list import PAGE, SuppressionList
from schemas.campaign import InvalidRow
from schemas.errors import InputError

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
    return SuppressionList(client, sid).add(normalised) if normalised else 0


def remove(client: redis.Redis, sid: str, numbers: Iterable[str], prefix: str | None) -> int:
    """Numbers removed (that were listed)."""
    normalised = normalise_all(numbers, prefix)
    return SuppressionList(client, sid).remove(normalised) if normalised else 0


def import_rows(
    client: redis.Redis,
    sid: str,
    rows: Iterable[tuple[int, str, object]],
    prefix: str | None,
    allowance: Allowance | None = None,
) -> ImportResult:
    """Add every valid number of `rows` (as `producer.recipients` reads them); invalid ones are skipped,
    unless there are more of them than `allowance` (None: none is refused for it)."""
    staged = SuppressionList(client, sid).staged_import()
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
                staged.add(page)
                page = []
        if page:
            staged.add(page)
        if allowance is not None:
            tally.refuse_if_over(allowance)
        added = staged.merge()
    finally:
        staged.discard()
    return ImportResult(read=read, added=added, invalid=tally.invalid, invalid_rows=invalid_rows)


def export(client: redis.Redis, sid: str) -> Iterator[str]:
    """Every listed number, in no particular order, without loading the set at once (Redis may
    repeat one while it resizes the set; an import of the export is unaffected)."""
    return SuppressionList(client, sid).numbers()


def count(client: redis.Redis, sid: str) -> int:
    return SuppressionList(client, sid).count()


def in_use(client: redis.Redis, sid: str) -> bool:
    """Whether the account lists anyone; `InputError` if its list was written by an older version."""
    listed, current = SuppressionList(client, sid).state()
    if listed and not current:
        raise InputError(
            f"the suppression list of account {sid or 'default'} was written by an older version; "
            "run `campaign suppress renormalise` first"
        )
    return listed


class RenormaliseResult(msgspec.Struct, frozen=True, kw_only=True):
    read: int  # numbers listed when it started
    added: int  # forms new to the list


def renormalise(client: redis.Redis, sid: str) -> RenormaliseResult:
    """Add the current forms of every listed number (`_Readings`), a page at a time, then mark the
    list with this version's format. Nothing is removed, and a form's own forms are among its
    number's, so a second run (or one after a stop) adds nothing new."""
    listed = SuppressionList(client, sid)
    forms_of = _Readings()
    read = listed.count()  # SSCAN returns each of them; the forms it adds, maybe
    added = 0
    page: list[str] = []
    for entry in listed.numbers():
        page.extend(forms_of(entry))
        if len(page) >= PAGE:
            added += listed.add_forms(page)
            page = []
    if page:
        added += listed.add_forms(page)
    listed.mark_current()
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
