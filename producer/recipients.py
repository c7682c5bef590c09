"""Stream recipient rows from CSV or JSON lines, one `(line number, number, field values)` at a time.

Memory is bounded by one row: the file is never loaded whole. A file that cannot be
read, looks binary, is UTF-16 or has no `to` column is refused with `RecipientsError`; so is a line
that is not UTF-8, with its number.
Only the fields asked for (a body's placeholders) are read; a missing or empty one is None.

A file is refused, with its line, rather than misread: two `to` columns (or two of a field asked
for); a quote that is never closed, that closes only to be followed by text, or whose value runs
over more than `MAX_RECORD_LINES` lines or over a line that reads as a row of its own (a number, in
any form the normaliser accepts, where the `to` column is); a line break in a `to` value; a control
character in a value asked for (tab, newline and carriage return aside); a value past the header's
last column (a value with a comma, unquoted: its row's cells shifted), though empty cells there are
fine; a JSON escape that is half a surrogate pair. A quoted value may otherwise hold line breaks (an
address), in any column but `to`.
"""

from __future__ import annotations

import codecs
import collections
import csv
import encodings.utf_8_sig
import io
import itertools
import json
import operator
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import msgspec

from producer.numbers import reads_as_number
from schemas.errors import RecipientsError
from schemas.template import CONTROL, SURROGATE

SNIFF_BYTES = 8192
_NOT_COMMA_OR_LF = bytes(set(range(256)) - set(b",\n"))
_UTF16_MARKS = (b"\xff\xfe", b"\xfe\xff")  # neither is a way UTF-8 text can start
UNQUOTED_PAGE_LINES = 1000  # a divisor of the usual job sizes: a job goes out as soon as it is read
# A row may span this many lines, its quoted values holding line breaks (an address); past them,
# the likelier reading is a quote left open that swallowed the rows after it.
MAX_RECORD_LINES = 10
_LINE_BREAK = re.compile("\r\n|\r|\n")
# A JSON escape that may spell a character of a key the reader looks for ("t\\u006f" is "to"): ASCII
# digits, letters and "_", and the Kelvin sign, which `str.lower` makes "k".
_ESCAPED_NAME = re.compile(r"\\u(?:00[3-7][0-9a-fA-F]|212[aA])")
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
    with _opened(path) as (text, is_json):
        # Refuses a missing 'to' column before the first row is read.
        yield _rows(text, is_json, path, tuple(fields), unquoted=unquoted and not fields)


@contextmanager
def _opened(path: str) -> Iterator[tuple[io.TextIOWrapper, bool]]:
    """`path` (`-`: stdin) as text, refused now if its head looks binary; and whether it is JSON
    lines. Stdin is left open for the rest of the process."""
    stream = _open_binary(path)
    try:
        text, is_json = _decoded(stream, path)
    except BaseException:
        if stream is not sys.stdin.buffer:
            stream.close()
        raise
    try:
        yield text, is_json
    finally:
        if stream is sys.stdin.buffer:
            text.detach()
        else:
            text.close()


def read_through(path: str, on_page: Callable[[Page], None] | None = None) -> bool:
    """Read all of `path`, a regular file, as `open_recipients` would, and raise what it would
    refuse; keeps nothing, and says whether it is a CSV file without a quote. Publishing spends
    this before it sends anything, passing each page of rows (their lines and numbers as given)
    to `on_page`, to count the invalid ones. A CSV file is scanned first (`_unquoted`): without a
    quote it is split a page at a time, not parsed."""
    with _opened(path) as (text, is_json):
        try:
            unquoted = False
            if is_json:
                pages = _row_pages(_json_lines(text, path, ()))
            else:
                _csv_reader(text, path, ())  # the header
                unquoted = _unquoted(text)
                text.seek(0)
                reader, column, _, width = _csv_reader(text, path, ())
                if unquoted:
                    pages = _unquoted_pages(text, path, column, width, reader.line_num + 1)
                else:  # a quote somewhere: the csv module reads it all, line numbers and all
                    pages = _row_pages(_csv_body(reader, column, width, (), (), path))
            collections.deque(pages if on_page is None else map(on_page, pages), maxlen=0)
            return unquoted
        except UnicodeDecodeError as e:
            raise _not_utf8(path, e) from e


def _row_pages(rows: Iterable[Row]) -> Iterator[Page]:
    rows = iter(rows)
    while batch := list(itertools.islice(rows, UNQUOTED_PAGE_LINES)):
        yield Page([row[0] for row in batch], [row[1] for row in batch])


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
    text: io.TextIOWrapper, is_json: bool, path: str, fields: tuple[str, ...], *, unquoted: bool = False
) -> Iterable[Row]:
    """Check the file's head now; the returned iterator reads the rest lazily."""
    try:
        if is_json:
            rows = _json_lines(text, path, fields)
        elif unquoted:
            reader, column, _, width = _csv_reader(text, path, ())
            return PagedRows(_unquoted_pages(text, path, column, width, reader.line_num + 1))
        else:
            rows = _csv_rows(text, path, fields)
    except UnicodeDecodeError as e:
        raise _not_utf8(path, e) from e
    return _utf8_checked(rows, path)


def _unquoted_pages(text: io.TextIOWrapper, path: str, column: int, width: int, line: int) -> Iterator[Page]:
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
        raise _not_utf8(path, e) from e


def _decoded(buffered: io.BufferedReader, path: str) -> tuple[io.TextIOWrapper, bool]:
    """The file as text, refused now if its head looks binary; and whether it is JSON lines."""
    head = buffered.peek(SNIFF_BYTES)[:SNIFF_BYTES]
    if head.startswith(_UTF16_MARKS) or (b"\x00" in head and _utf16(head)):
        raise RecipientsError(
            f"recipients file {path!r} is UTF-16 text (Excel's 'Unicode Text'?): save it as CSV UTF-8"
        )
    if b"\x00" in head:
        line = head.count(b"\n", 0, head.index(b"\x00")) + 1
        raise RecipientsError(
            f"recipients file {path!r} looks binary (a NUL byte on line {line}); "
            "give a CSV or JSON-lines file"
        )
    first = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    is_json = path.lower().endswith(JSON_SUFFIXES) or first == b"{"
    return io.TextIOWrapper(buffered, encoding=_ENCODING, newline=""), is_json


def _utf16(head: bytes) -> bool:
    """UTF-16 without its mark: ASCII text read as such has a NUL every other byte, and no other."""
    for nul, other in ((head[1::2], head[0::2]), (head[0::2], head[1::2])):
        if b"\x00" not in other and nul.count(0) * 4 >= len(nul):
            return True
    return False


def _utf8_checked(rows: Iterator[Row], path: str) -> Iterator[Row]:
    try:
        yield from rows
    except UnicodeDecodeError as e:
        raise _not_utf8(path, e) from e


def _not_utf8(path: str, error: UnicodeDecodeError) -> RecipientsError:
    where = f"recipients file {path!r}" + (f" line {error.line}" if isinstance(error, _NotUtf8) else "")
    return RecipientsError(
        f"{where} is not UTF-8 text (the byte 0x{error.object[error.start]:02x}: {error.reason}); "
        "save it as UTF-8 (in Excel: CSV UTF-8)"
    )


class _NotUtf8(UnicodeDecodeError):
    line: int  # the line the byte is on


class _LineCountingDecoder(encodings.utf_8_sig.IncrementalDecoder):
    """UTF-8 (a byte order mark aside) that counts the line breaks in the bytes it is given, to
    refuse one that is not UTF-8 on its line: exact wherever the reads start and end, and cheaper
    than counting lines as they are read. Bytes held back between reads (part of a character)
    hold no line break."""

    def __init__(self, errors: str = "strict") -> None:
        super().__init__(errors)
        self.breaks, self.after_cr = 0, False  # in the bytes decoded; whether the last was a CR

    # TextIOWrapper gives bytes (the supertype says any buffer).
    def decode(self, input: bytes, final: bool = False) -> str:  # type: ignore[override]
        try:
            text = super().decode(input, final)
        except UnicodeDecodeError as e:  # e.object: the bytes held back and these, the mark aside
            error = _NotUtf8(e.encoding, e.object, e.start, e.end, e.reason)
            error.line = 1 + self.breaks + _breaks(e.object[: e.start], self.after_cr)
            raise error from e
        if input:
            self.breaks += _breaks(input, self.after_cr)
            self.after_cr = input.endswith(b"\r")
        return text

    def reset(self) -> None:
        super().reset()
        self.breaks, self.after_cr = 0, False


def _breaks(data: bytes, after_cr: bool) -> int:
    """The line breaks in `data` (CR LF, CR or LF, as the csv module reads them); `after_cr`: the
    byte before it is a CR, so a LF first is the end of a CR LF already counted."""
    if b"\r" not in data and not after_cr:  # most files: LF alone, counted at a byte a cycle or so
        return data.count(b"\n")
    cr_lf = data.count(b"\r\n") + (after_cr and data.startswith(b"\n"))
    return data.count(b"\n") + data.count(b"\r") - cr_lf


# TextIOWrapper takes its decoder by the name of an encoding only.
_ENCODING = "recipients_utf_8"
_CODEC = codecs.CodecInfo(
    encodings.utf_8_sig.encode,
    encodings.utf_8_sig.decode,
    incrementaldecoder=_LineCountingDecoder,
    name=_ENCODING,
)
codecs.register(lambda name: _CODEC if name == _ENCODING else None)


def _csv_rows(text: io.TextIOWrapper, path: str, fields: tuple[str, ...]) -> Iterator[Row]:
    """Reads the header now, then returns the lazy row iterator."""
    reader, column, columns, width = _csv_reader(text, path, fields)
    return _csv_body(reader, column, width, columns, fields, path)


def _csv_reader(
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
        raise RecipientsError(f"recipients file {path!r} has no 'to' column (header: {shown})")
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


def _csv_body(
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
                _refuse_control(path, start, fields, values)  # isprintable: the fast way out
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


def _refuse_control(path: str, line: int, fields: tuple[str, ...], values: tuple[str | None, ...]) -> None:
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


def _json_lines(text: io.TextIOWrapper, path: str, fields: tuple[str, ...]) -> Iterator[Row]:
    names = ("to", *fields)
    quoted = tuple(f'"{name}"' for name in fields)
    for line_number, line in enumerate(text, start=1):
        if not line.strip():
            continue
        try:
            row = _json_line.decode(line)
        except msgspec.DecodeError as e:
            raise _not_json(path, line_number, line, e) from e
        lowered_line = line.lower()  # a key repeated? or a value that is the same word, more often
        if (
            lowered_line.count('"to"') > 1
            or (fields and any(lowered_line.count(q) > 1 for q in quoted))
            or ("\\" in line and _ESCAPED_NAME.search(line))  # a key written with escapes
        ):
            _check_keys(path, line_number, line, names)
        to = row.get("to")
        if to is None:
            raise RecipientsError(f"recipients file {path!r} line {line_number}: no 'to' key")
        if fields:
            lowered = {str(k).lower(): v for k, v in row.items()}
            values = tuple(field_text(lowered.get(f)) for f in fields)
            if not (joined := "".join(filter(None, values))).isprintable() and CONTROL.search(joined):
                _refuse_control(path, line_number, fields, values)
        else:
            values = ()
        yield line_number, str(to), values


def _check_keys(path: str, line_number: int, line: str, names: tuple[str, ...]) -> None:
    """Refuses a line whose object has one of `names` twice (case aside): msgspec keeps the last."""
    keys: list[str] = []

    def top_level(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys[:] = [key.lower() for key, _ in pairs]  # the outermost object comes last
        return {}

    json.loads(line, object_pairs_hook=top_level)
    for name in names:
        if keys.count(name) > 1:
            raise RecipientsError(
                f"recipients file {path!r} line {line_number}: the key {name!r} is there "
                f"{keys.count(name)} times; keep one"
            )


def _not_json(path: str, line_number: int, line: str, error: msgspec.DecodeError) -> RecipientsError:
    """msgspec's reason, unless the line is JSON with half a surrogate pair (`"\\ud800"`), which
    msgspec calls truncated input: say which key holds it."""
    where = f"recipients file {path!r} line {line_number}"
    try:
        row = json.loads(line)
    except ValueError:
        row = None
    if isinstance(row, dict):
        for key, value in row.items():
            text = f"{key}{value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)}"
            if found := SURROGATE.search(text):
                return RecipientsError(
                    f"{where}: field {key!r} has a lone surrogate (U+{ord(found[0]):04X}): not valid text"
                )
    return RecipientsError(f"{where}: not a JSON object ({error})")


def field_text(value: Any) -> str | None:
    """A JSON value as message text: null and blank strings are missing; numbers and booleans as written."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()
