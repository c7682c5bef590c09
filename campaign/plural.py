"""Counts in sentences: `1 recipient`, `2 recipients`."""

from __future__ import annotations


def plural(count: float, noun: str, many: str | None = None) -> str:
    """`count` and `noun`, or its plural (`many`, else `noun` + "s") unless `count` is 1.
    A float is written as `%g` writes it (`2.5`, `5000`)."""
    shown = f"{count:g}" if isinstance(count, float) else str(count)
    return f"{shown} {noun if count == 1 else many or noun + 's'}"
