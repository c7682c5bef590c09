"""Read a recipients JSON-lines file: an object with a `to` key per line, each key at most once (case
aside); a JSON escape that is half a surrogate pair is refused with its key."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from typing import Any

import msgspec

from producer.recipients.rows import Row, field_text, refuse_control_on
from schemas.errors import RecipientsError
from schemas.template import CONTROL, SURROGATE

# A JSON escape that may spell a character of a key the reader looks for ("t\\u006f" is "to"): ASCII
# digits, letters and "_", and the Kelvin sign, which `str.lower` makes "k".
_ESCAPED_NAME = re.compile(r"\\u(?:00[3-7][0-9a-fA-F]|212[aA])")
_json_line = msgspec.json.Decoder(dict[str, Any])


def json_rows(text: io.TextIOWrapper, path: str, fields: tuple[str, ...]) -> Iterator[Row]:
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
                refuse_control_on(path, line_number, fields, values)
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
