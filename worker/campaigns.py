"""Campaign state as workers see it: start a job, read the control state, settle chunks.

Every chunk is settled by one Lua script that moves the job's progress (the number of
its recipients settled, so workers may chunk differently) forward and updates the
counters together: the counters cannot drift from the progress, and a redelivered job
neither resends nor recounts a settled chunk.
"""

from __future__ import annotations

import time

import msgspec
import redis.asyncio as aioredis

from schemas import keys
from schemas.campaign import CampaignSpec, CampaignState, Job

_BEGIN_JOB_LUA = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return false end
if state == 'queued' or state == 'scheduled' then
  state = 'running'
  redis.call('HSET', KEYS[1], 'state', state)
  redis.call('HSETNX', KEYS[1], 'started_at', ARGV[2])
end
-- A paused job is only looked at, not loaded: it will be back.
local job = false
if state ~= 'paused' then job = redis.call('HGET', KEYS[3], ARGV[1]) or false end
return {state, redis.call('HGET', KEYS[1], 'spec'), redis.call('HGET', KEYS[2], ARGV[1]) or '0', job}
"""

# ARGV: job, settled recipients after this chunk, now, failure code or '', then (counter, amount) pairs.
_SETTLE_CHUNK_LUA = """
local done = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if tonumber(ARGV[2]) <= done then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
for i = 5, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
  if ARGV[i] == 'failed' and ARGV[4] ~= '' then redis.call('HINCRBY', KEYS[3], ARGV[4], ARGV[i + 1]) end
end
local c = redis.call('HMGET', KEYS[1], 'total', 'submitted', 'failed', 'unknown', 'cancelled', 'state')
local settled = 0
for i = 2, 5 do settled = settled + tonumber(c[i] or '0') end
if settled >= tonumber(c[1]) then
  if c[6] ~= 'cancelled' then redis.call('HSET', KEYS[1], 'state', 'completed') end
  redis.call('HSETNX', KEYS[1], 'finished_at', ARGV[3])
end
return 1
"""

_job_decoder = msgspec.msgpack.Decoder(Job)
_spec_decoder = msgspec.json.Decoder(CampaignSpec)


class JobStart(msgspec.Struct, frozen=True, kw_only=True):
    state: str
    spec: CampaignSpec
    job: Job | None  # None while the campaign is paused
    settled: int  # recipients of this job already settled


class CampaignStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self._begin = client.register_script(_BEGIN_JOB_LUA)
        self._settle = client.register_script(_SETTLE_CHUNK_LUA)

    async def begin_job(self, campaign_id: str, job_index: int) -> JobStart | None:
        """Mark the campaign running and load what the job needs; None if the campaign or job is gone."""
        found = await self._begin(
            keys=[keys.campaign(campaign_id), keys.progress(campaign_id), keys.jobs(campaign_id)],
            args=[job_index, time.time()],
        )
        if not found:
            return None
        state, spec, settled, job = found
        state = state.decode()
        if job is None and state != CampaignState.PAUSED:
            return None
        return JobStart(
            state=state,
            spec=_spec_decoder.decode(spec),
            job=_job_decoder.decode(job) if job is not None else None,
            settled=int(settled),
        )

    async def state(self, campaign_id: str) -> str:
        raw: bytes | None = await self.client.hget(keys.campaign(campaign_id), keys.STATE)  # type: ignore[assignment]
        return raw.decode() if raw else ""

    async def settle_chunk(
        self, campaign_id: str, job_index: int, settled: int, counts: dict[str, int], code: str = ""
    ) -> bool:
        """Record that the job's first `settled` recipients are done; False if they already were."""
        pairs = [item for name, amount in counts.items() if amount for item in (name, amount)]
        applied = await self._settle(
            keys=[keys.campaign(campaign_id), keys.progress(campaign_id), keys.failures(campaign_id)],
            args=[job_index, settled, time.time(), code, *pairs],
        )
        return bool(applied)

    async def count_retry(self, campaign_id: str) -> None:
        await self.client.hincrby(keys.campaign(campaign_id), keys.RETRIED, 1)
