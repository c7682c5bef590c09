"""Stream recipient rows from CSV or JSON lines, one (line number, number) at a time.

Memory is bounded by one row: the file is never loaded whole. A file that cannot be
read, looks binary, is not UTF-8 or has no `to` column is refused with `RecipientsError`.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec

from schemas.errors import RecipientsError

SNIFF_BYTES = 8192
JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")
_json_line = msgspec.json.Decoder(dict[str, Any])


@contextmanager
def open_recipients(path: str) -> Iterator[Iterator[tuple[int, str]]]:
    """Yield an iterator of `(line, to)` over `path` (`-` is stdin)."""
    stream = _open_binary(path)
    text = None
    try:
        # Refuses a binary file or a missing 'to' column before the first row is read.
        text, rows = _rows(stream, path)
        yield rows
    finally:
        if stream is sys.stdin.buffer:
            if text is not None:
                text.detach()  # leave stdin open for the rest of the process
        elif text is not None:
            text.close()
        else:
            stream.close()


def _open_binary(path: str) -> io.BufferedReader:
    if path == "-":
        return sys.stdin.buffer  # type: ignore[return-value]
    try:
        return open(path, "rb")
    except OSError as e:
        raise RecipientsError(f"cannot read recipients file {path!r}: {e.strerror}") from e


def _rows(buffered: io.BufferedReader, path: str) -> tuple[io.TextIOWrapper, Iterator[tuple[int, str]]]:
    """Check the file's head now; the returned iterator reads the rest lazily."""
    head = buffered.peek(SNIFF_BYTES)[:SNIFF_BYTES]
    if b"\x00" in head:
        raise RecipientsError(
            f"recipients file {path!r} looks binary (NUL bytes); give a CSV or JSON-lines file"
        )
    text = io.TextIOWrapper(buffered, encoding="utf-8-sig", newline="")
    first = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    is_json = path.lower().endswith(JSON_SUFFIXES) or first == b"{"
    try:
        rows = _json_lines(text, path) if is_json else _csv_rows(text, path)
    except UnicodeDecodeError as e:
        raise _not_utf8(path, e) from e
    return text, _utf8_checked(rows, path)


def _utf8_checked(rows: Iterator[tuple[int, str]], path: str) -> Iterator[tuple[int, str]]:
    try:
        yield from rows
    except UnicodeDecodeError as e:
        raise _not_utf8(path, e) from e


def _not_utf8(path: str, error: UnicodeDecodeError) -> RecipientsError:
    return RecipientsError(f"recipients file {path!r} is not UTF-8 text ({error.reason})")


def _csv_rows(text: io.TextIOWrapper, path: str) -> Iterator[tuple[int, str]]:
    """Reads the header now, then returns the lazy row iterator."""
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
    return _csv_body(reader, names.index("to"), path)


def _csv_body(reader: Any, column: int, path: str) -> Iterator[tuple[int, str]]:
    try:
        for row in reader:
            if not row:
                continue  # blank line
            yield reader.line_num, row[column] if column < len(row) else ""
    except csv.Error as e:
        raise RecipientsError(f"recipients file {path!r} line {reader.line_num}: {e}") from e


def _json_lines(text: io.TextIOWrapper, path: str) -> Iterator[tuple[int, str]]:
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
        yield line_number, str(to)
