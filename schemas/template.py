"""A message body with `{field}` placeholders, filled per recipient: `Hi {name|there}, ...`.

`{field}` takes the recipient's value of `field` (a CSV column or JSON-lines key; names are
case-insensitive); `{field|default}` falls back to `default` when the value is missing or empty.
`{{` and `}}` are literal braces; any other brace that does not make a placeholder is literal too.
The producer fills defaults and checks every row; the worker renders the values it stored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# Characters a message never carries: C0 controls but tab, newline and carriage return (a value's
# line breaks), DEL and C1 controls. Kaleyra would pass them on as they are; none is part of a number.
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Half a UTF-16 surrogate pair: not text (a JSON "\ud800", or a byte of argv that is not UTF-8).
SURROGATE = re.compile("[\ud800-\udfff]")

_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)(?:\|([^{}]*))?\}")


class Template:
    """A parsed body: literal text between placeholders, each naming an index into `fields`."""

    __slots__ = ("_parts", "defaults", "fields")

    def __init__(self, body: str) -> None:
        fields: list[str] = []  # distinct names, in order of first use
        defaults: dict[str, str] = {}
        parts: list[str | int] = []
        literal: list[str] = []
        end = 0
        for match in _TOKEN.finditer(body):
            literal.append(body[end : match.start()])
            end = match.end()
            name = match[1]
            if name is None:  # an escaped brace
                literal.append(match[0][0])
                continue
            name = name.lower()
            if name not in defaults and match[2] is not None:
                defaults[name] = match[2]
            if name not in fields:
                fields.append(name)
            parts.extend(("".join(literal), fields.index(name)))
            literal = []
        literal.append(body[end:])
        parts.append("".join(literal))
        self._parts = tuple(p for p in parts if p != "")
        self.fields = tuple(fields)
        self.defaults = defaults

    @property
    def personalised(self) -> bool:
        return bool(self.fields)

    def render(self, values: Sequence[str]) -> str:
        """The body for one recipient; `values` line up with `fields`."""
        return "".join(p if isinstance(p, str) else values[p] for p in self._parts)
