"""Recipients given as dicts (the Python API's `recipients=`), read as rows of a file would be."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from producer.recipients.rows import Row, field_text, refuse_control
from schemas.errors import RecipientsError


def mapping_rows(mappings: Iterable[Mapping[str, Any]], fields: Sequence[str]) -> Iterator[Row]:
    """`(row number from 1, to, values of fields)` for each dict: a `to` key and the body's fields, names
    case-insensitive and each at most once, values as JSON lines' are (None or blank: missing)."""
    names = ("to", *fields)
    for number, mapping in enumerate(mappings, start=1):
        where = f"recipients row {number}"
        if not isinstance(mapping, Mapping):
            raise RecipientsError(f"{where}: {type(mapping).__name__} is not a dict with a 'to' key")
        lowered = {str(key).lower(): value for key, value in mapping.items()}
        if len(lowered) < len(mapping):
            spelled = [str(key) for key in mapping]
            for name in names:
                if sum(key.lower() == name for key in spelled) > 1:
                    raise RecipientsError(f"{where}: the key {name!r} is there more than once (case aside)")
        to = lowered.get("to")
        if to is None:
            raise RecipientsError(f"{where}: no 'to' key")
        values = tuple(field_text(lowered.get(name)) for name in fields)
        refuse_control(where, fields, values)
        yield number, str(to), values
