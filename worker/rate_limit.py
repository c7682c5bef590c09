"""One rate limit per Kaleyra account, shared by every worker process on every host through Redis.

A reservation scheme (GCRA): each request reserves its messages' share of the account's time
line in one Lua script, on Redis's clock, and sleeps until its turn, so workers never poll and
the event loop is never blocked. The limit is read at each reservation: `campaign limit SET`
takes effect for the next request on every worker.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from schemas import keys

# KEYS[1]: the account's rate hash. ARGV[1]: messages. Returns {seconds to wait, limit} as strings;
# without a limit, {"0", "0"}.
_RESERVE_LUA = """
local limit = tonumber(redis.call('HGET', KEYS[1], 'limit') or '0')
if limit <= 0 then return {'0', '0'} end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local start = math.max(tonumber(redis.call('HGET', KEYS[1], 'tat') or '0'), now)
redis.call('HSET', KEYS[1], 'tat', string.format('%.6f', start + tonumber(ARGV[1]) / limit))
return {string.format('%.6f', start - now), tostring(limit)}
"""

# A chunk is at most this share of a second's budget, so that no one-second window can hold
# much more than the limit.
MAX_CHUNK_SHARE = 0.05


class AccountRateLimit:
    def __init__(self, client: aioredis.Redis, sid: str) -> None:
        self._key = keys.account_rate(sid)
        self._reserve = client.register_script(_RESERVE_LUA)
        self._client = client

    async def limit(self) -> float:
        """Messages per second; 0 when the account has no limit."""
        raw = await self._client.hget(self._key, "limit")  # type: ignore[misc]
        return float(raw) if raw else 0.0

    async def wait_turn(self, messages: int) -> float:
        """Reserve `messages` and sleep until they may go; returns the limit in force (0: none)."""
        wait, limit = await self._reserve(keys=[self._key], args=[messages])
        if (seconds := float(wait)) > 0:
            await asyncio.sleep(seconds)
        return float(limit)


def chunk_size_under(limit: float, size: int) -> int:
    """The chunk size to use under `limit` messages per second (0: no limit)."""
    if limit <= 0:
        return size
    return max(1, min(size, int(limit * MAX_CHUNK_SHARE)))
