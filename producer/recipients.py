"""Stream recipient rows from CSV or JSON lines, one `(line number, number, field values)` at a time.

Memory is bounded by one row: the file is never loaded whole. A file that cannot be
read, looks binary, is not UTF-8 or has no `to` column is refused with `RecipientsError`.
Only the fields asked for (a body's placeholders) are read; a missing or empty one is None.
"""

from __future__ import annotations

import collections
import csv
import io
import itertools
import operator
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import msgspec

from schemas.errors import RecipientsError

SNIFF_BYTES = 8192
UNQUOTED_PAGE_LINES = 1000  # a divisor of the usual job sizes: a job goes out as soon as it is read
JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")
_json_line = msgspec.json.Decoder(dict[str, Any])

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


@contextmanager
def open_recipients(
    path: str, fields: Sequence[str] = (), *, unquoted: bool = False
) -> Iterator[Iterable[Row]]:
    """Yield the rows `(line, to, values)` of `path` (`-` is stdin), read lazily; `values` line up
    with `fields` (lower-case names). `unquoted`: `read_through` found the CSV file without a
    quote, so with no fields to read its lines are split a page at a time, not parsed."""
    stream = _open_binary(path)
    text = None
    try:
        # Refuses a binary file or a missing 'to' column before the first row is read.
        text, rows = _rows(stream, path, tuple(fields), unquoted=unquoted and not fields)
        yield rows
    finally:
        if stream is sys.stdin.buffer:
            if text is not None:
                text.detach()  # leave stdin open for the rest of the process
        elif text is not None:
            text.close()
        else:
            stream.close()


def read_through(path: str) -> bool:
    """Read all of `path`, a regular file, as `open_recipients` would, and raise what it would
    refuse; keeps nothing, and says whether it is a CSV file without a quote. Publishing spends
    this before it sends anything, so a CSV file is only decoded and scanned (`_unquoted`) where
    that shows the csv module would refuse nothing, and otherwise drained by the csv module,
    without a Python step per row."""
    with _open_binary(path) as stream:
        text, is_json = _decoded(stream, path)
        with text:
            try:
                if is_json:
                    collections.deque(_json_lines(text, path, ()), maxlen=0)
                    return False
                _csv_reader(text, path, ())  # the header
                if _unquoted(text):
                    return True
                text.seek(0)  # a quote somewhere: let the csv module read it all, line numbers and all
                reader, _, _ = _csv_reader(text, path, ())
                try:
                    collections.deque(reader, maxlen=0)
                except csv.Error as e:
                    raise RecipientsError(f"recipients file {path!r} line {reader.line_num}: {e}") from e
                return False
            except UnicodeDecodeError as e:
                raise _not_utf8(path, e) from e


def count_lines(path: str) -> int:
    """The lines of `path`, a regular file: about as many as its rows, counted at the speed of a read."""
    with _open_binary(path) as stream:
        return sum(block.count(b"\n") for block in iter(lambda: stream.read(1 << 20), b""))


def _unquoted(text: io.TextIOWrapper) -> bool:
    """Read the rest of `text`; True if the csv module would refuse none of it. Without a quote the
    csv module refuses only a field over its size limit: the rest is read in pieces of half that
    limit, each ending a line (or the file), so no line is longer than the limit."""
    size = csv.field_size_limit() // 2
    while piece := text.read(size):
        if '"' in piece:
            return False
        if len(piece) == size and "\n" not in piece and "\r" not in piece:
            return False  # a line that may be too long: the csv module tells
    return True


def _open_binary(path: str) -> io.BufferedReader:
    if path == "-":
        return sys.stdin.buffer  # type: ignore[return-value]
    try:
        return open(path, "rb")
    except OSError as e:
        raise RecipientsError(f"cannot read recipients file {path!r}: {e.strerror}") from e


def _rows(
    buffered: io.BufferedReader, path: str, fields: tuple[str, ...], *, unquoted: bool = False
) -> tuple[io.TextIOWrapper, Iterable[Row]]:
    """Check the file's head now; the returned iterator reads the rest lazily."""
    text, is_json = _decoded(buffered, path)
    try:
        if is_json:
            rows = _json_lines(text, path, fields)
        elif unquoted:
            reader, column, _ = _csv_reader(text, path, ())
            return text, PagedRows(_unquoted_pages(text, path, column, reader.line_num + 1))
        else:
            rows = _csv_rows(text, path, fields)
    except UnicodeDecodeError as e:
        raise _not_utf8(path, e) from e
    return text, _utf8_checked(rows, path)


def _unquoted_pages(text: io.TextIOWrapper, path: str, column: int, line: int) -> Iterator[Page]:
    """The rows of a CSV file without a quote from `line` on, where each line is a row: a page of
    lines at a time, split at commas, blank ones skipped (as the csv module does), without a Python
    step per row."""
    try:
        while lines := list(itertools.islice(text, UNQUOTED_PAGE_LINES)):
            records = list(map(str.rstrip, lines, itertools.repeat("\r\n")))
            if '"' in "".join(records):
                quoted = line + next(i for i, record in enumerate(records) if '"' in record)
                raise RecipientsError(f"recipients file {path!r} line {quoted}: a quote that was not there "
                                      "when the file was checked")  # fmt: skip
            cells = map(str.split, records, itertools.repeat(","))
            numbers = list(map(operator.itemgetter(column), cells)) if column == 0 else [
                row[column] if column < len(row) else "" for row in cells
            ]  # fmt: skip
            numbered = range(line, line + len(lines))
            if "" in records:  # a blank line is no row
                yield Page(
                    list(itertools.compress(numbered, records)), list(itertools.compress(numbers, records))
                )
            else:
                yield Page(numbered, numbers)
            line += len(lines)
    except UnicodeDecodeError as e:
        raise _not_utf8(path, e) from e


def _decoded(buffered: io.BufferedReader, path: str) -> tuple[io.TextIOWrapper, bool]:
    """The file as text, refused now if its head looks binary; and whether it is JSON lines."""
    head = buffered.peek(SNIFF_BYTES)[:SNIFF_BYTES]
    if b"\x00" in head:
        raise RecipientsError(
            f"recipients file {path!r} looks binary (NUL bytes); give a CSV or JSON-lines file"
        )
    first = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    is_json = path.lower().endswith(JSON_SUFFIXES) or first == b"{"
    return io.TextIOWrapper(buffered, encoding="utf-8-sig", newline=""), is_json


def _utf8_checked(rows: Iterator[Row], path: str) -> Iterator[Row]:
    try:
        yield from rows
    except UnicodeDecodeError as e:
        raise _not_utf8(path, e) from e


def _not_utf8(path: str, error: UnicodeDecodeError) -> RecipientsError:
    return RecipientsError(f"recipients file {path!r} is not UTF-8 text ({error.reason})")


def _csv_rows(text: io.TextIOWrapper, path: str, fields: tuple[str, ...]) -> Iterator[Row]:
    """Reads the header now, then returns the lazy row iterator."""
    reader, column, columns = _csv_reader(text, path, fields)
    return _csv_body(reader, column, columns, path)


def _csv_reader(
    text: io.TextIOWrapper, path: str, fields: tuple[str, ...]
) -> tuple[Any, int, tuple[int, ...]]:
    """A reader past the header; the `to` column's index and those of `fields` (-1: not in the file)."""
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        raise RecipientsError(
            f"recipients file {path!r} is empty; it needs a header row with a 'to' column"
        ) from None
    except csv.Error as e:
        raise RecipientsError(f"recipients file {path!r} line 1: {e}") from e
    names = [name.strip().lower() for name in header]
    if "to" not in names:
        shown = ", ".join(repr(n) for n in header[:5]) or "nothing"
        raise RecipientsError(f"recipients file {path!r} has no 'to' column (header: {shown})")
    # A field the header lacks reads as missing on every row (-1 is never a column).
    columns = tuple(names.index(f) if f in names else -1 for f in fields)
    return reader, names.index("to"), columns


def _csv_body(reader: Any, column: int, columns: tuple[int, ...], path: str) -> Iterator[Row]:
    try:
        for row in reader:
            if not row:
                continue  # blank line
            width = len(row)
            values = (
                tuple(row[c] if 0 <= c < width and row[c] and not row[c].isspace() else None for c in columns)
                if columns
                else ()
            )
            yield reader.line_num, row[column] if column < width else "", values
    except csv.Error as e:
        raise RecipientsError(f"recipients file {path!r} line {reader.line_num}: {e}") from e


def _json_lines(text: io.TextIOWrapper, path: str, fields: tuple[str, ...]) -> Iterator[Row]:
    for line_number, line in enumerate(text, start=1):
        if not line.strip():
            continue
        try:
            row = _json_line.decode(line)
        except msgspec.DecodeError as e:
            raise RecipientsError(
                f"recipients file {path!r} line {line_number}: not a JSON object ({e})"
            ) from e
        to = row.get("to")
        if to is None:
            raise RecipientsError(f"recipients file {path!r} line {line_number}: no 'to' key")
        if fields:
            lowered = {str(k).lower(): v for k, v in row.items()}
            values = tuple(_text(lowered.get(f)) for f in fields)
        else:
            values = ()
        yield line_number, str(to), values


def _text(value: Any) -> str | None:
    """A JSON value as message text: null and blank strings are missing; numbers and booleans as written."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()
