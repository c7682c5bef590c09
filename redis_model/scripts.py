"""The Lua scripts of the data model, read once from `lua/*.lua`.

A script that calls a function of `lua/lib/` says so in a `--! uses name, ...` line; the function's
file (and those it uses in turn) is put before the script, once, since Lua scripts sent to Redis
cannot load one another.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from importlib import resources
from typing import Protocol

_USES = re.compile(r"^--! uses (.+)$", re.MULTILINE)


@functools.cache
def source(name: str) -> str:
    """The text to run for script `name` (`lua/{name}.lua`): the library functions it uses, then it."""
    text = _read(f"{name}.lua")
    return "".join(_read(f"lib/{function}.lua") for function in _library_of(text)) + text


def _library_of(text: str) -> list[str]:
    """The library functions `text` uses, each after those it uses in turn, each once."""
    ordered: dict[str, None] = {}
    for match in _USES.finditer(text):
        for function in (name.strip() for name in match.group(1).split(",")):
            if function not in ordered:
                ordered.update(dict.fromkeys(_library_of(_read(f"lib/{function}.lua"))))
                ordered[function] = None
    return list(ordered)


@functools.cache
def _read(relative: str) -> str:
    return (resources.files(__package__) / "lua" / relative).read_text(encoding="utf-8")


class _Numbered(Protocol):
    @property
    def to(self) -> str: ...


def joined_numbers(recipients: Sequence[_Numbered]) -> str:
    """A page of numbers as one script argument: E.164 numbers (never a comma in them) joined by commas."""
    return ",".join([r.to for r in recipients])  # a list: join would build one from a generator anyway
