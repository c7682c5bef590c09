"""Open a recipients file as UTF-8 text: refused now if it looks binary or UTF-16, and a byte that is
not UTF-8 refused later with the line it is on; whether it is JSON lines is told by its name or head."""

from __future__ import annotations

import codecs
import encodings.utf_8_sig
import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from producer.recipients.rows import Row
from schemas.errors import RecipientsError

SNIFF_BYTES = 8192
_UTF16_MARKS = (b"\xff\xfe", b"\xfe\xff")  # neither is a way UTF-8 text can start
JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")


@contextmanager
def opened(path: str) -> Iterator[tuple[io.TextIOWrapper, bool]]:
    """`path` (`-`: stdin) as text, refused now if its head looks binary; and whether it is JSON
    lines. Stdin is left open for the rest of the process."""
    stream = open_binary(path)
    try:
        text, is_json = decoded(stream, path)
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


def open_binary(path: str) -> io.BufferedReader:
    if path == "-":
        return sys.stdin.buffer  # type: ignore[return-value]
    try:
        return open(path, "rb")
    except OSError as e:
        raise RecipientsError(f"cannot read recipients file {path!r}: {e.strerror}") from e


def decoded(buffered: io.BufferedReader, path: str) -> tuple[io.TextIOWrapper, bool]:
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


def utf8_checked(rows: Iterator[Row], path: str) -> Iterator[Row]:
    try:
        yield from rows
    except UnicodeDecodeError as e:
        raise not_utf8(path, e) from e


def not_utf8(path: str, error: UnicodeDecodeError) -> RecipientsError:
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
