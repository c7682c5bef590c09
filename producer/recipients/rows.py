"""The rows every recipients reader yields, and the checks on the values that go into a message."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import msgspec

from schemas.errors import RecipientsError
from schemas.template import CONTROL

UNQUOTED_PAGE_LINES = 1000  # a divisor of the usual job sizes: a job goes out as soon as it is read

Row = tuple[int, str, tuple[str | None, ...]]


class Page(NamedTuple):
    """Rows without field values, a page at a time: their line numbers and their numbers as given."""

    lines: Sequence[int]
    numbers: list[str]


class PagedRows:
    """The rows of a CSV file without quotes and without fields to read, which can also be taken a
    page at a time (`pages`) rather than as a tuple per row. Read once, either way."""

    def __init__(self, pages: Iterator[Page]) -> None:
        self._pages = pages

    def pages(self) -> Iterator[Page]:
        return self._pages

    def __iter__(self) -> Iterator[Row]:
        for lines, numbers in self._pages:
            yield from zip(lines, numbers, itertools.repeat(()))


def refuse_control_on(path: str, line: int, fields: tuple[str, ...], values: tuple[str | None, ...]) -> None:
    """Refuses the control character in a value that goes into the message."""
    refuse_control(f"recipients file {path!r} line {line}", fields, values)


def refuse_control(where: str, fields: Sequence[str], values: Sequence[str | None]) -> None:
    """Refuses the control character in a value that goes into the message; `where` names the row."""
    for name, value in zip(fields, values, strict=True):
        if value is not None and (found := CONTROL.search(value)):
            raise RecipientsError(
                f"{where}: field {name!r} has the control character "
                f"{_character(found[0])}; remove it (only tab and line breaks are kept)"
            )


def _character(ch: str) -> str:
    return f"{ch!r} (U+{ord(ch):04X})"


def field_text(value: Any) -> str | None:
    """A JSON value as message text: null and blank strings are missing; numbers and booleans as written."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()
