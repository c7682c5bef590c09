"""Lua scripts that the producer and the worker both run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class _Numbered(Protocol):
    @property
    def to(self) -> str: ...


def joined_numbers(recipients: Sequence[_Numbered]) -> str:
    """The scripts' ARGV[1]: E.164 numbers (never a comma in them) joined by commas."""
    return ",".join(r.to for r in recipients)


# KEYS[1] an account's suppression list; ARGV[1] numbers joined by commas (one argument to pack,
# a short reply). Returns the 1-based positions of the listed numbers; at once when none is listed.
LISTED_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
local listed, i = {}, 0
for number in string.gmatch(ARGV[1], '[^,]+') do
  i = i + 1
  if redis.call('SISMEMBER', KEYS[1], number) == 1 then listed[#listed + 1] = i end
end
return listed
"""
