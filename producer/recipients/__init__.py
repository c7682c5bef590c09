"""Stream recipient rows from CSV or JSON lines, one `(line number, number, field values)` at a time.

Memory is bounded by one row: the file is never loaded whole. A file that cannot be read, looks binary,
is UTF-16 or has no `to` column is refused with `RecipientsError`; so is a line that is not UTF-8, with
its number, and whatever its reader refuses (`csv_file`, `json_lines`). Only the fields asked for (a
body's placeholders) are read; a missing or empty one is None.
"""

from __future__ import annotations

import collections
import io
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

from producer.recipients.csv_file import csv_body, csv_reader, csv_rows, is_unquoted, unquoted_pages
from producer.recipients.json_lines import json_rows
from producer.recipients.opening import not_utf8, open_binary, opened, utf8_checked
from producer.recipients.rows import UNQUOTED_PAGE_LINES, Page, PagedRows, Row

__all__ = ["Page", "PagedRows", "Row", "count_lines", "open_recipients", "read_through"]


@contextmanager
def open_recipients(
    path: str, fields: Sequence[str] = (), *, unquoted: bool = False
) -> Iterator[Iterable[Row]]:
    """Yield the rows `(line, to, values)` of `path` (`-` is stdin), read lazily; `values` line up
    with `fields` (lower-case names). `unquoted`: `read_through` found the CSV file without a
    quote, so with no fields to read its lines are split a page at a time, not parsed."""
    with opened(path) as (text, is_json):
        # Refuses a missing 'to' column before the first row is read.
        yield _rows(text, is_json, path, tuple(fields), unquoted=unquoted and not fields)


def read_through(path: str, on_page: Callable[[Page], None] | None = None) -> bool:
    """Read all of `path`, a regular file, as `open_recipients` would, and raise what it would
    refuse; keeps nothing, and says whether it is a CSV file without a quote. Publishing spends
    this before it sends anything, passing each page of rows (their lines and numbers as given)
    to `on_page`, to count the invalid ones. A CSV file is scanned first (`is_unquoted`): without a
    quote it is split a page at a time, not parsed."""
    with opened(path) as (text, is_json):
        try:
            unquoted = False
            if is_json:
                pages = _row_pages(json_rows(text, path, ()))
            else:
                csv_reader(text, path, ())  # the header
                unquoted = is_unquoted(text)
                text.seek(0)
                reader, column, _, width = csv_reader(text, path, ())
                if unquoted:
                    pages = unquoted_pages(text, path, column, width, reader.line_num + 1)
                else:  # a quote somewhere: the csv module reads it all, line numbers and all
                    pages = _row_pages(csv_body(reader, column, width, (), (), path))
            collections.deque(pages if on_page is None else map(on_page, pages), maxlen=0)
            return unquoted
        except UnicodeDecodeError as e:
            raise not_utf8(path, e) from e


def _row_pages(rows: Iterable[Row]) -> Iterator[Page]:
    rows = iter(rows)
    while batch := list(itertools.islice(rows, UNQUOTED_PAGE_LINES)):
        yield Page([row[0] for row in batch], [row[1] for row in batch])


def count_lines(path: str) -> int:
    """The lines of `path`, a regular file: about as many as its rows, counted at the speed of a read."""
    with open_binary(path) as stream:
        return sum(block.count(b"\n") for block in iter(lambda: stream.read(1 << 20), b""))


def _rows(
    text: io.TextIOWrapper, is_json: bool, path: str, fields: tuple[str, ...], *, unquoted: bool = False
) -> Iterable[Row]:
    """Check the file's head now; the returned iterator reads the rest lazily."""
    try:
        if is_json:
            rows = json_rows(text, path, fields)
        elif unquoted:
            reader, column, _, width = csv_reader(text, path, ())
            return PagedRows(unquoted_pages(text, path, column, width, reader.line_num + 1))
        else:
            rows = csv_rows(text, path, fields)
    except UnicodeDecodeError as e:
        raise not_utf8(path, e) from e
    return utf8_checked(rows, path)
