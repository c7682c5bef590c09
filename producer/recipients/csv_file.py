"""Read a recipients CSV file: a header with a `to` column, then rows that are refused, with their
line, rather than misread.

Refused: two `to` columns (or two of a field asked for); a quote that is never closed, that closes
only to be followed by text, or whose value runs over more than `MAX_RECORD_LINES` lines or over a
line that reads as a row of its own (a number, in any form the normaliser accepts, where the `to`
column is); a line break in a `to` value; a control character in a value asked for (tab, newline and
carriage return aside); a value past the header's last column (a value with a comma, unquoted: its
row's cells shifted), though empty cells there are fine. A quoted value may otherwise hold line
breaks (an address), in any column but `to`.
"""

from __future__ import annotations

import csv
import io
import itertools
import operator
import re
from collections.abc import Iterator
from typing import Any

from producer.numbers import reads_as_number
from producer.recipients.opening import not_utf8
from producer.recipients.rows import UNQUOTED_PAGE_LINES, Page, Row, refuse_control_on
from schemas.errors import RecipientsError
from schemas.template import CONTROL

_NOT_COMMA_OR_LF = bytes(set(range(256)) - set(b",\n"))
# A row may span this many lines, its quoted values holding line breaks (an address); past them,
# the likelier reading is a quote left open that swallowed the rows after it.
MAX_RECORD_LINES = 10
_LINE_BREAK = re.compile("\r\n|\r|\n")
# Separators a file with no 'to' column may have been saved with instead of commas, and their names.
_OTHER_SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "bars"}


def is_unquoted(text: io.TextIOWrapper) -> bool:
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


def unquoted_pages(text: io.TextIOWrapper, path: str, column: int, width: int, line: int) -> Iterator[Page]:
    """The rows of a CSV file without a quote from `line` on, where each line is a row: a page of
    lines at a time, split at commas, blank ones skipped (as the csv module does), without a Python
    step per row (but for a page with a row wider than the header, `width` cells)."""
    try:
        while lines := list(itertools.islice(text, UNQUOTED_PAGE_LINES)):
            records = list(map(str.rstrip, lines, itertools.repeat("\r\n")))
            page = "\n".join(records)
            if '"' in page:
                quoted = line + next(i for i, record in enumerate(records) if '"' in record)
                raise RecipientsError(f"recipients file {path!r} line {quoted}: a quote that was not there "
                                      "when the file was checked")  # fmt: skip
            # Deleting all but commas and line breaks leaves each row's commas together: a row wider
            # than the header has `width` of them in a row.
            if b"," * width in page.encode().translate(None, _NOT_COMMA_OR_LF):
                for number, record in enumerate(records, line):
                    _check_width(path, number, record.split(","), width)
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
        raise not_utf8(path, e) from e


def csv_rows(text: io.TextIOWrapper, path: str, fields: tuple[str, ...]) -> Iterator[Row]:
    """Reads the header now, then returns the lazy row iterator."""
    reader, column, columns, width = csv_reader(text, path, fields)
    return csv_body(reader, column, width, columns, fields, path)


def csv_reader(
    text: io.TextIOWrapper, path: str, fields: tuple[str, ...]
) -> tuple[Any, int, tuple[int, ...], int]:
    """A reader past the header; the `to` column's index, those of `fields` (-1: not in the file)
    and the header's width. Strict: a quoted value followed by text, or a file ending inside quotes,
    is an error."""
    reader = csv.reader(text, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise RecipientsError(
            f"recipients file {path!r} is empty; it needs a header row with a 'to' column"
        ) from None
    except csv.Error as e:
        raise _broken(path, e, 1, reader.line_num) from e
    names = [name.strip().lower() for name in header]
    if "to" not in names:
        shown = ", ".join(repr(n) for n in header[:5]) or "nothing"
        # A spreadsheet saved in a locale whose decimal mark is a comma separates values with `;` or tabs.
        separator = next(
            (name for sep, name in _OTHER_SEPARATORS.items() if any(sep in n for n in header)), None
        )
        hint = f"; its values look separated by {separator}: save it as CSV with commas" if separator else ""
        raise RecipientsError(f"recipients file {path!r} has no 'to' column (header: {shown}){hint}")
    for name in ("to", *fields):  # which of two columns holds the value is anyone's guess
        if names.count(name) > 1:
            where = [str(i) for i, n in enumerate(names, 1) if n == name]
            shown = ", ".join(repr(header[int(i) - 1]) for i in where)
            raise RecipientsError(
                f"recipients file {path!r} line {reader.line_num}: columns {' and '.join(where)} ({shown}) "
                f"are both {name!r}; keep one, or rename the other"
            )
    # A field the header lacks reads as missing on every row (-1 is never a column).
    columns = tuple(names.index(f) if f in names else -1 for f in fields)
    return reader, names.index("to"), columns, len(header)


def csv_body(
    reader: Any, column: int, header: int, columns: tuple[int, ...], fields: tuple[str, ...], path: str
) -> Iterator[Row]:
    """The rows, each numbered by the line it starts on; none with a value past the `header` cells."""
    end = reader.line_num  # the last line read
    try:
        for row in reader:
            start, end = end + 1, reader.line_num
            if not row:
                continue  # blank line
            width = len(row)
            if end != start:
                _check_lines(path, start, end, row, column)
            if width > header:
                _check_width(path, start, row, header)
            if not columns:
                yield start, row[column] if column < width else "", ()
                continue
            values = tuple(
                row[c] if 0 <= c < width and row[c] and not row[c].isspace() else None for c in columns
            )
            if not (joined := "".join(filter(None, values))).isprintable() and CONTROL.search(joined):
                refuse_control_on(path, start, fields, values)  # isprintable: the fast way out
            yield start, row[column] if column < width else "", values
    except csv.Error as e:
        raise _broken(path, e, end + 1, reader.line_num) from e


def _broken(path: str, error: csv.Error, start: int, line: int) -> RecipientsError:
    """The csv module's refusal of the row that starts on line `start`, found on line `line`."""
    where = f"recipients file {path!r} line {start}"
    if str(error) == "unexpected end of data":
        return RecipientsError(f"{where}: a quote opened here is never closed (the file ends inside it)")
    if line == start:
        if str(error).startswith("',' expected after"):
            return RecipientsError(
                f"{where}: text after a closing quote; quote the whole value and double the quotes in it, "
                f'as in "5"" screen"'
            )
        return RecipientsError(f"{where}: {error}")
    return RecipientsError(
        f"{where}: a quote opened here runs to line {line} ({error}); is a quote left open here?"
    )


def _check_width(path: str, line: int, row: list[str], header: int) -> None:
    """Refuses a row with a value past the header's `header` cells: most likely a value holding a
    comma, unquoted, and the cells after it shifted. Empty cells there are fine (a spreadsheet's)."""
    if len(row) > header and "".join(row[header:]).strip():
        while not row[-1].strip():
            row = row[:-1]
        extra = len(row) - header
        # The value split: the one before a cell starting with a space ("Kumar, Asha"), else the last.
        first = next((i - 1 for i in range(1, header) if row[i][:1].isspace()), header - 1)
        raise RecipientsError(
            f"recipients file {path!r} line {line}: {len(row)} fields where the header has {header} "
            f"({','.join(row[first : first + extra + 1])[:40]!r}?): quote a value that holds a comma"
        )


def _check_lines(path: str, start: int, end: int, row: list[str], column: int) -> None:
    """A row over several lines (quoted values holding line breaks): refused where it is more likely
    a quote left open, swallowing the rows after it, than a value written over a few lines."""
    where = f"recipients file {path!r} line {start}"
    if end - start + 1 > MAX_RECORD_LINES:
        raise RecipientsError(
            f"{where}: a quoted value runs over {end - start + 1} lines, to line {end}; is a quote left "
            f"open here? (a value may hold line breaks over at most {MAX_RECORD_LINES} lines)"
        )
    to = row[column] if column < len(row) else ""
    if "\n" in to or "\r" in to:
        raise RecipientsError(
            f"{where}: the 'to' value {to[:40]!r} holds a line break; is a quote left open here?"
        )
    line = start
    for cell in row:
        pieces = _LINE_BREAK.split(cell)
        for offset, piece in enumerate(pieces[1:], 1):
            cells = piece.split(",")
            if column < len(cells) and reads_as_number(cells[column]):
                raise RecipientsError(
                    f"{where}: a quoted value runs over line {line + offset}, which reads as a row of its "
                    f"own ({piece[:40]!r}); is a quote left open here?"
                )
        line += len(pieces) - 1
