"""Lua scripts that the producer and the worker both run."""

from __future__ import annotations

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
