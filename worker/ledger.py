"""The chunk ledger: a chunk is claimed before its POST and settled after it.

A claim is a lease (`owner|deadline|offset|size`) on the job's next chunk. A redelivered
job finds a live claim and waits (`busy`). An expired claim, or one left by an earlier
attempt of the same delivery, means the outcome is unknown; the campaign's policy
decides: `hold` settles that chunk as `unknown`, `resend` claims it again and counts it
`resent`. The claim that starts a chunk also reads the campaign's state: a paused or cancelled
campaign is not claimed from, and the verdict says which. Settling stores the chunk's outcome
(message ids included) and advances the job's progress and the counters in the same script,
only while the claim is still ours, so counters are derived from ledger transitions.
"""

from __future__ import annotations

import enum
import time

import msgspec
import redis
import redis.asyncio as aioredis
import tenacity

from schemas import keys
from schemas.campaign import ChunkOutcome
from schemas.scripts import COMPLETE_IF_DONE_LUA

SETTLE_PATIENCE_S = 60

_outcome_encoder = msgspec.json.Encoder()


# KEYS: campaign, progress, claims, outcomes. ARGV: job, owner, now ms, lease ms, offset, size, policy,
# "1" to claim only while the campaign is neither paused nor cancelled (else its state is returned).
_CLAIM_LUA = (
    COMPLETE_IF_DONE_LUA
    + """
local campaign = redis.call('HMGET', KEYS[1], 'total', 'state')
if not campaign[1] then return {'settled', 0} end
local settled = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
-- Claims follow the job's progress exactly: a worker elsewhere resyncs from it.
if settled ~= tonumber(ARGV[5]) then return {'settled', settled} end
-- Pause and cancel take effect at the next claim, whoever steered the campaign.
if ARGV[8] == '1' and (campaign[2] == 'paused' or campaign[2] == 'cancelled') then
  return {campaign[2], settled}
end
local claim = redis.call('HGET', KEYS[3], ARGV[1])
if claim then
  local owner, deadline, offset, size = string.match(claim, '^(.*)|(%d+)|(%d+)|(%d+)$')
  if tonumber(deadline) > tonumber(ARGV[3]) then return {'busy', settled} end
  -- A stale claim: its worker vanished or lost Redis between its POST and its settlement.
  local reach = tonumber(offset) + tonumber(size)
  if ARGV[7] == 'hold' and reach > settled then
    -- Everything up to the end of that chunk may have been sent: unknown, never resent.
    redis.call('HINCRBY', KEYS[1], 'unknown', reach - settled)
    redis.call('HSET', KEYS[4], ARGV[1] .. ':' .. settled,
      '{"outcome":"unknown","size":' .. (reach - settled) .. ',"code":"WORKER_LOST"}')
    redis.call('HSET', KEYS[2], ARGV[1], reach)
    redis.call('HDEL', KEYS[3], ARGV[1])
    complete_if_done(tonumber(ARGV[3]) / 1000)
    return {'held', reach}
  elseif ARGV[7] == 'resend' and tonumber(offset) == settled then
    redis.call('HINCRBY', KEYS[1], 'resent', size)
  end
end
local deadline = tonumber(ARGV[3]) + tonumber(ARGV[4])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2] .. '|' .. deadline .. '|' .. ARGV[5] .. '|' .. ARGV[6])
return {'claimed', settled}
"""
)

# KEYS: campaign, progress, claims, failures, outcomes.
# ARGV: job, owner, settled after, now, code, settled before, the outcome's JSON, then (counter, n) pairs.
_SETTLE_LUA = (
    COMPLETE_IF_DONE_LUA
    + """
local claim = redis.call('HGET', KEYS[3], ARGV[1])
if not claim or string.match(claim, '^(.*)|%d+|%d+|%d+$') ~= ARGV[2] then return 0 end
local done = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if done ~= tonumber(ARGV[6]) or tonumber(ARGV[3]) <= done then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[5], ARGV[1] .. ':' .. ARGV[6], ARGV[7])
redis.call('HSET', KEYS[1], 'seen_at', ARGV[4])
for i = 8, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
  if ARGV[i] == 'failed' and ARGV[5] ~= '' then redis.call('HINCRBY', KEYS[4], ARGV[5], ARGV[i + 1]) end
end
complete_if_done(ARGV[4])
return 1
"""
)

# Release the claim, only if it is still ours.
_RELEASE_LUA = """
local claim = redis.call('HGET', KEYS[1], ARGV[1])
if not claim or string.match(claim, '^(.*)|%d+|%d+|%d+$') ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
"""


class Claim(enum.Enum):
    CLAIMED = "claimed"  # ours: send it
    BUSY = "busy"  # another live worker is sending this job's chunk: come back later
    HELD = "held"  # an abandoned chunk was settled `unknown`: continue from the new progress
    SETTLED = "settled"  # already done: continue from the progress
    PAUSED = "paused"  # nothing claimed (asked `while_running`): come back later
    CANCELLED = "cancelled"  # nothing claimed (asked `while_running`): settle the rest as cancelled


class ChunkLedger:
    def __init__(self, client: aioredis.Redis, *, lease_ms: int) -> None:
        self.client = client
        self.lease_ms = lease_ms
        self._claim = client.register_script(_CLAIM_LUA)
        self._settle = client.register_script(_SETTLE_LUA)
        self._release = client.register_script(_RELEASE_LUA)

    async def claim(
        self,
        campaign_id: str,
        job: int,
        owner: str,
        offset: int,
        size: int,
        policy: str,
        *,
        while_running: bool = False,
        now_ms: int | None = None,
    ) -> tuple[Claim, int]:
        """Claim the job's recipients [offset, offset + size); returns the verdict and the job's progress.

        `while_running`: a paused or cancelled campaign is not claimed from (the verdict says which),
        so the claim that starts a chunk reads the campaign's state in the same round trip."""
        verdict, settled = await self._claim(
            keys=[
                keys.campaign(campaign_id),
                keys.progress(campaign_id),
                keys.claims(campaign_id),
                keys.outcomes(campaign_id),
            ],
            args=[
                job,
                owner,
                now_ms if now_ms is not None else _now_ms(),
                self.lease_ms,
                offset,
                size,
                policy,
                "1" if while_running else "0",
            ],
        )
        return Claim(verdict.decode()), int(settled)

    async def release(self, campaign_id: str, job: int, owner: str) -> bool:
        """Give the claim back: nothing was sent (a transient error), another worker may take it now.

        Patient like `settle`: a claim left behind by a Redis blip would go stale and be held
        `unknown`, although nothing was sent.
        """
        async for attempt in _riding_out_redis_blips():
            with attempt:
                released = await self._release(keys=[keys.claims(campaign_id)], args=[job, owner])
        return bool(released)

    async def settle(self, campaign_id: str, job: int, owner: str, start: int, outcome: ChunkOutcome) -> bool:
        """Record the outcome of our claimed recipients from `start`; False if the claim was lost.

        The counters move by `outcome.counts()` in the same script that stores the outcome.
        """
        counts = outcome.counts()
        pairs = [item for name, amount in counts.items() if amount for item in (name, amount)]
        record = _outcome_encoder.encode(outcome)
        # After a POST, losing the settlement to a Redis blip would leave the outcome unknown.
        async for attempt in _riding_out_redis_blips():
            with attempt:
                applied = await self._settle(
                    keys=[keys.campaign(campaign_id), keys.progress(campaign_id), keys.claims(campaign_id),
                          keys.failures(campaign_id), keys.outcomes(campaign_id)],
                    args=[job, owner, start + outcome.size, time.time(), outcome.code, start, record, *pairs],
                )  # fmt: skip
        return bool(applied)


def _riding_out_redis_blips() -> tenacity.AsyncRetrying:
    """Keep trying through a Redis restart (up to SETTLE_PATIENCE_S) before giving up."""
    return tenacity.AsyncRetrying(
        retry=tenacity.retry_if_exception_type((redis.ConnectionError, redis.TimeoutError)),
        stop=tenacity.stop_after_delay(SETTLE_PATIENCE_S),
        wait=tenacity.wait_exponential(multiplier=0.1, max=5),
        reraise=True,
    )


def _now_ms() -> int:
    return int(time.time() * 1000)
