"""Normalise recipient rows: numbers to E.164, placeholders filled in, invalid numbers counted and kept."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence

from producer.invalid import Tally, printable
from producer.numbers import InvalidNumber, NumberNormaliser
from schemas.campaign import CampaignSpec, InvalidRow, Recipient
from schemas.errors import SpecError
from schemas.gsm7 import GSM7, needs_ucs2
from schemas.kaleyra import MAX_BODY_CHARS
from schemas.settings import Settings
from schemas.template import Template

SHOWN_INVALID_ROWS = 20

# A recipient row: (line, number as given) or (line, number, values of the body's placeholders).
Row = tuple[int, str] | tuple[int, str, Sequence[str | None]]


class Normalising:
    """Rows in, a page of recipients out: `on_full` is called when a page of recipients, or of
    invalid rows, is full; the caller then takes them (`take_page`, `take_invalid`)."""

    def __init__(self, spec: CampaignSpec, settings: Settings, on_full: Callable[[], None]) -> None:
        self.on_full = on_full
        self.page_size = settings.job_size
        self.normaliser = NumberNormaliser(spec.prefix)
        self.tally = Tally(spec.prefix)
        self.template = Template(spec.body)
        self.personalised = self.template.personalised  # read once per row
        self.unicode = spec.unicode or settings.default_unicode
        self.page: list[Recipient] = []
        self.invalid = 0
        self.invalid_rows: list[InvalidRow] = []  # the first few, for the user to fix
        self.invalid_page: list[InvalidRow] = []  # not written yet

    def add(self, line: int, raw: str, values: Sequence[str | None] = ()) -> None:
        self.tally.rows += 1
        try:
            number = self.normaliser.normalise(raw)
        except InvalidNumber as e:
            self.tally.count_invalid(e)
            self._skip(line, raw, e.reason)
            return
        fields = fill_placeholders(self.template, self.unicode, line, values) if self.personalised else ()
        self.page.append(Recipient(number, line, fields))
        if len(self.page) >= self.page_size:
            self.on_full()

    def add_page(self, lines: Sequence[int], raws: list[str]) -> None:
        """Rows without field values, as their line numbers and numbers as given. A page of plain
        national numbers of one shape (the usual file) is normalised at once, without a step per row."""
        numbers = self.normaliser.normalise_all(raws)
        if numbers is None:
            for line, raw in zip(lines, raws, strict=True):
                self.add(line, raw)
            return
        self.tally.rows += len(numbers)
        self.page.extend(map(Recipient, numbers, lines))
        if len(self.page) >= self.page_size:
            self.on_full()

    def take_page(self) -> list[Recipient]:
        page, self.page = self.page, []
        return page

    def take_invalid(self) -> list[InvalidRow]:
        rows, self.invalid_page = self.invalid_page, []
        return rows

    def _skip(self, line: int, raw: str, reason: str) -> None:
        self.invalid += 1
        row = InvalidRow(line, printable(raw), reason)
        if len(self.invalid_rows) < SHOWN_INVALID_ROWS:
            self.invalid_rows.append(row)
        self.invalid_page.append(row)
        if len(self.invalid_page) >= self.page_size:
            self.on_full()


def pages_of(rows: Iterable[Row], size: int) -> Iterator[tuple[list[int], list[str]]]:
    """Rows without field values, `size` at a time, as their line numbers and numbers as given."""
    rows = iter(rows)
    while batch := list(itertools.islice(rows, size)):
        yield [row[0] for row in batch], [row[1] for row in batch]


def fill_placeholders(
    template: Template, unicode: str, line: int, values: Sequence[str | None]
) -> tuple[str, ...]:
    """The row's values of the body's placeholders, defaults filled in; refuses a row missing one
    without a default, or whose message would be too long or outside `unicode 0`'s alphabet."""
    filled = []
    for index, name in enumerate(template.fields):
        value = values[index] if index < len(values) else None
        if value is None:
            value = template.defaults.get(name)
            if value is None:
                raise SpecError(
                    f"recipients line {line}: no value for {{{name}}} in the body; "
                    f"fill it in or give a default, e.g. {{{name}|there}}"
                )
        filled.append(value)
    body = template.render(filled)
    if not body.strip():
        raise SpecError(f"recipients line {line}: the message is empty once filled in (Kaleyra: E601)")
    if len(body) > MAX_BODY_CHARS:
        raise SpecError(
            f"recipients line {line}: the message has {len(body)} characters once filled in; "
            f"Kaleyra accepts at most {MAX_BODY_CHARS} (E401)"
        )
    if unicode == "0" and needs_ucs2(body):
        outside = next(ch for ch in body if ch not in GSM7)
        raise SpecError(
            f"recipients line {line}: unicode 0 cannot carry {outside!r} (not GSM-7); use auto or 1"
        )
    return tuple(filled)
