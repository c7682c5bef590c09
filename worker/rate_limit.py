"""One rate limit per Kaleyra account, shared by every worker process on every host through Redis,
and an adaptive pace under it that bursts of E403s cut and time restores (AIMD).

A reservation scheme (GCRA): each request reserves its messages' share of the account's time
line in one Lua script, on Redis's clock, and sleeps until its turn, so workers never poll and
the event loop is never blocked. The pace is the lower of `campaign limit` and the adaptive
pace: a burst of E403s or 429s (a quarter of the requests or more) halves the pace, at most
once per cooldown, and it then grows back linearly to where it was, where the adaptive pace
ends. Without a limit the cut starts from the rate sent over the last second. Everything is
read at each reservation, so a change takes effect at every worker's next request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import redis.asyncio as aioredis

from schemas import keys
from schemas.campaign import Recipient
from schemas.scripts import LISTED_POSITIONS_LUA, joined_numbers

# A chunk is at most this share of a second's budget, so that no one-second window can hold
# much more than the limit; and bulk books at most this far ahead, so that urgent requests
# (which go first) and a new limit push the account past its limit for no more than a moment.
MAX_CHUNK_SHARE = 0.05
MAX_AHEAD_S = 0.1
# AIMD: an E403 burst multiplies the pace by this; it grows back to where it was in RECOVERY_S.
DECREASE = 0.5
RECOVERY_S = 10.0
COOLDOWN_S = 1.0  # one burst is one cut, however many requests saw it
# A burst: at least this share of the last second or two's requests pushed back. A steady few
# E403s are retried, not read as a signal, or the pace would halve every second toward the floor.
BURST_SHARE, BURST_MIN_REQUESTS = 0.25, 10
FLOOR, FLOOR_SHARE = 1.0, 0.05  # messages per second, and share of where the cut started

_NOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
"""

# KEYS[1]: the account's rate hash. ARGV: messages wanted, "1" for an urgent request (OTP, TXN), how
# far ahead (s) bulk may book, the largest share of a second's budget one request may take.
# Returns {seconds to wait, messages granted, "1" if a limit or pace applied} as strings. Granted
# "0": nothing was booked (the bulk line is booked further ahead than allowed); ask again after the
# wait. An urgent request books on a line of its own, ahead of the bulk backlog, and pushes the bulk
# line back by as much; since bulk books at most a moment ahead, the account's limit holds within
# that moment.
# With KEYS[2] (a suppression list) and ARGV[5] (the request's numbers, joined by commas), the reply
# goes on with the 1-based positions of the booked numbers on that list now: one round trip for both.
_RESERVE_LUA = (
    _NOW
    + LISTED_POSITIONS_LUA
    + """
local function reserve(key, n)
  local f = redis.call('HMGET', key, 'limit', 'pace', 'pace_at', 'step', 'ceiling', 'tat', 'seen_from',
                       'seen', 'urgent_tat')
  local limit, pace = tonumber(f[1] or '0'), tonumber(f[2] or '0')
  if pace > 0 then  -- additive increase, by the time since the last reservation
    pace = pace + tonumber(f[4]) * (now - tonumber(f[3]))
    if pace >= tonumber(f[5]) then
      redis.call('HDEL', key, 'pace', 'pace_at', 'step', 'ceiling')
      pace = 0
    else
      redis.call('HSET', key, 'pace', tostring(pace), 'pace_at', tostring(now))
    end
  end
  local rate = limit
  if pace > 0 and (rate <= 0 or pace < rate) then rate = pace end
  local bulk_start = math.max(tonumber(f[6] or '0'), now)
  if rate > 0 then
    n = math.max(1, math.min(n, math.floor(rate * tonumber(ARGV[4]))))
    if ARGV[2] ~= '1' and bulk_start - now > tonumber(ARGV[3]) then
      return {string.format('%.6f', bulk_start - now - tonumber(ARGV[3])), '0', '1'}
    end
  end
  -- A window of about a second: the messages sent (where a cut starts when there is no limit), the
  -- requests, and the pushbacks among them (whether E403s are a burst or the usual few).
  local seen_from = tonumber(f[7] or '0')
  if now - seen_from >= 1 then
    local last = redis.call('HMGET', key, 'requests', 'pushbacks')
    if seen_from > 0 then
      redis.call('HSET', key, 'seen_rate', tostring(tonumber(f[8] or '0') / (now - seen_from)))
    end
    redis.call('HSET', key, 'seen_from', tostring(now), 'seen', n, 'requests', 1, 'pushbacks', 0,
      'prev_requests', last[1] or 0, 'prev_pushbacks', last[2] or 0)
  else
    redis.call('HINCRBY', key, 'seen', n)
    redis.call('HINCRBY', key, 'requests', 1)
  end
  if rate <= 0 then return {'0', tostring(n), '0'} end
  local start = bulk_start
  if ARGV[2] == '1' then
    start = math.max(tonumber(f[9] or '0'), now)
    redis.call('HSET', key, 'urgent_tat', string.format('%.6f', start + n / rate))
  end
  redis.call('HSET', key, 'tat', string.format('%.6f', bulk_start + n / rate))
  return {string.format('%.6f', start - now), tostring(n), '1'}
end

local turn = reserve(KEYS[1], tonumber(ARGV[1]))
if KEYS[2] then
  for _, position in ipairs(listed_positions(KEYS[2], ARGV[5], tonumber(turn[2]))) do
    turn[#turn + 1] = position
  end
end
return turn
"""
)

# KEYS[1]: the account's rate hash. ARGV: decrease, recovery s, cooldown s, floor, floor share, burst share,
# and the fewest requests a burst is judged on.
# Returns the new pace, or "0" when nothing was cut (not a burst, in the cooldown, or no rate known).
_CUT_LUA = (
    _NOW
    + """
local key = KEYS[1]
-- No request for a while: the window's figures are stale, and a lone pushback is no burst.
if now - tonumber(redis.call('HGET', key, 'seen_from') or '0') > 2 then return '0' end
local pushbacks = redis.call('HINCRBY', key, 'pushbacks', 1)
local w = redis.call('HMGET', key, 'requests', 'prev_requests', 'prev_pushbacks')
local requests = tonumber(w[1] or '0') + tonumber(w[2] or '0')
if requests < tonumber(ARGV[7]) or (pushbacks + tonumber(w[3] or '0')) / requests < tonumber(ARGV[6]) then
  return '0'
end
local f = redis.call('HMGET', key, 'limit', 'pace', 'cut_at', 'seen_rate', 'ceiling')
if now - tonumber(f[3] or '0') < tonumber(ARGV[3]) then return '0' end
local limit, pace, seen = tonumber(f[1] or '0'), tonumber(f[2] or '0'), tonumber(f[4] or '0')
local base = pace > 0 and pace or limit
if seen > 0 and (base <= 0 or seen < base) then base = seen end
if base <= 0 then return '0' end
local ceiling = tonumber(f[5] or '0')
if ceiling <= 0 then ceiling = limit > 0 and limit or base end
local cut = math.max(tonumber(ARGV[4]), ceiling * tonumber(ARGV[5]), base * tonumber(ARGV[1]))
local step = (ceiling - cut) / tonumber(ARGV[2])
redis.call('HSET', key, 'pace', tostring(cut), 'pace_at', tostring(now), 'cut_at', tostring(now),
  'ceiling', tostring(ceiling), 'step', tostring(step))
return tostring(cut)
"""
)


class AccountRateLimit:
    def __init__(self, client: aioredis.Redis, sid: str) -> None:
        self._key = keys.account_rate(sid)
        self._reserve = client.register_script(_RESERVE_LUA)
        self._cut = client.register_script(_CUT_LUA)
        # Whether the last reservation was paced (a limit, or a cut not yet recovered): a booked turn
        # is then a slot in time, to be used at once; without one it may be asked ahead.
        self.limited = False

    async def wait_turn(self, messages: int, *, urgent: bool = False) -> int:
        """Book up to `messages` (fewer under a limit: a chunk is a small share of a second) and sleep
        until they may go; returns how many were booked. Without a limit, all of them at once."""
        booked, _ = await self._book(messages, urgent, [], [])
        return booked

    async def wait_turn_looking_up(
        self, recipients: Sequence[Recipient], suppression_list: str, *, urgent: bool = False
    ) -> tuple[int, list[int]]:
        """`wait_turn` for the recipients, and in the same round trip the 0-based positions of those
        booked whose numbers are on `suppression_list` now."""
        return await self._book(len(recipients), urgent, [suppression_list], [joined_numbers(recipients)])

    async def _book(
        self, messages: int, urgent: bool, more_keys: list[str], more_args: list[str]
    ) -> tuple[int, list[int]]:
        args = [messages, "1" if urgent else "0", MAX_AHEAD_S, MAX_CHUNK_SHARE, *more_args]
        while True:
            wait, granted, limited, *listed = await self._reserve(keys=[self._key, *more_keys], args=args)
            self.limited = limited == b"1"
            if (seconds := float(wait)) > 0:
                await asyncio.sleep(seconds)
            if booked := int(granted):
                return booked, [position - 1 for position in listed]

    async def wait_turn_for_all(self, messages: int, *, urgent: bool = False) -> None:
        """Book exactly `messages` (a retry of a chunk already cut), in as many turns as it takes."""
        while messages > 0:
            messages -= await self.wait_turn(messages, urgent=urgent)

    async def back_off(self) -> float:
        """The gateway pushed back (E403, 429): cut the pace; returns the new pace, 0 if not cut."""
        args = [DECREASE, RECOVERY_S, COOLDOWN_S, FLOOR, FLOOR_SHARE, BURST_SHARE, BURST_MIN_REQUESTS]
        cut = await self._cut(keys=[self._key], args=args)
        return float(cut)
