"""Lua scripts that the producer and the worker both run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class _Numbered(Protocol):
    @property
    def to(self) -> str: ...


def joined_numbers(recipients: Sequence[_Numbered]) -> str:
    """The scripts' ARGV[1]: E.164 numbers (never a comma in them) joined by commas."""
    return ",".join([r.to for r in recipients])  # a list: join would build one from a generator anyway


# `listed_positions(key, numbers, upto)`: the 1-based positions, among the first `upto` of `numbers`
# (joined by commas: one argument to pack, a short reply), of those on the suppression list `key`;
# at once when the list is empty.
LISTED_POSITIONS_LUA = """
local function listed_positions(key, numbers, upto)
  local listed = {}
  if redis.call('EXISTS', key) == 0 then return listed end
  local i = 0
  for number in string.gmatch(numbers, '[^,]+') do
    i = i + 1
    if i > upto then break end
    if redis.call('SISMEMBER', key, number) == 1 then listed[#listed + 1] = i end
  end
  return listed
end
"""

# KEYS[1] an account's suppression list; ARGV[1] numbers joined by commas. Returns `listed_positions`.
LISTED_LUA = LISTED_POSITIONS_LUA + "return listed_positions(KEYS[1], ARGV[1], math.huge)\n"


# `complete_if_done(now)`: sets state `completed` (unless cancelled; `failed` when not one recipient
# was submitted: every one failed or is unknown) once every recipient is settled,
# but never while KEYS[1] has `publishing` (the producer's lease: the total may still grow). Only the
# producer's finish or a cancel removes it; a lapsed lease is a producer that died, which status shows.
# KEYS[1] is the campaign; `now` is Unix time in seconds.
COMPLETE_IF_DONE_LUA = """
local function complete_if_done(now)
  local c = redis.call('HMGET', KEYS[1], 'total', 'submitted', 'failed', 'unknown', 'cancelled', 'state',
                       'publishing')
  if not c[1] or c[7] then return end
  local settled = 0
  for i = 2, 5 do settled = settled + tonumber(c[i] or '0') end
  if settled >= tonumber(c[1]) then
    if c[6] ~= 'cancelled' then
      local none_sent = tonumber(c[1]) > 0 and tonumber(c[2] or '0') == 0
      redis.call('HSET', KEYS[1], 'state', none_sent and 'failed' or 'completed')
    end
    redis.call('HSETNX', KEYS[1], 'finished_at', now)
  end
end
"""


# KEYS[1] a campaign that was just cancelled: a producer still publishing it stops at its next page,
# and one that died mid-file ends here, so the campaign can finish. ARGV[1]: now.
END_PUBLISHING_LUA = (
    COMPLETE_IF_DONE_LUA
    + """
if redis.call('HDEL', KEYS[1], 'publishing') == 1 then complete_if_done(ARGV[1]) end
"""
)
