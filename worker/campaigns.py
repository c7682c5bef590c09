"""Campaign state as workers see it: start a job, expire a campaign, count retries.

A job's progress is the number of its recipients settled (so workers may chunk
differently); `worker.ledger` moves it forward.
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
-- A scheduled campaign is only looked at until its release: it can still be cancelled.
local release = tonumber(redis.call('HGET', KEYS[1], 'release_at') or '0')
if (state == 'queued' or state == 'scheduled') and release > tonumber(ARGV[2]) then
  return {state, redis.call('HGET', KEYS[1], 'spec'), '0', false, tostring(release)}
end
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

# Cancels a campaign past its expiry, unless it already finished or was cancelled.
_EXPIRE_LUA = """
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'queued' or state == 'scheduled' or state == 'running' or state == 'paused' then
  redis.call('HSET', KEYS[1], 'state', 'cancelled')
  return 1
end
return 0
"""

_job_decoder = msgspec.msgpack.Decoder(Job)
_spec_decoder = msgspec.json.Decoder(CampaignSpec)


class JobStart(msgspec.Struct, frozen=True, kw_only=True):
    state: str
    spec: CampaignSpec
    job: Job | None  # None while the campaign is paused or held until its release
    settled: int  # recipients of this job already settled
    held_until: float | None = None  # a scheduled campaign's release (Unix time), while it is held


class CampaignStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self._begin = client.register_script(_BEGIN_JOB_LUA)
        self._expire = client.register_script(_EXPIRE_LUA)

    async def begin_job(self, campaign_id: str, job_index: int) -> JobStart | None:
        """Mark the campaign running and load what the job needs; None if the campaign or job is gone."""
        found = await self._begin(
            keys=[keys.campaign(campaign_id), keys.progress(campaign_id), keys.jobs(campaign_id)],
            args=[job_index, time.time()],
        )
        if not found:
            return None
        state, spec, settled, job, *held = found
        state = state.decode()
        if job is None and state != CampaignState.PAUSED and not held:
            return None
        return JobStart(
            state=state,
            spec=_spec_decoder.decode(spec),
            job=_job_decoder.decode(job) if job is not None else None,
            settled=int(settled),
            held_until=float(held[0]) if held else None,
        )

    async def expire(self, campaign_id: str) -> bool:
        """Cancel the campaign: its expiry passed. False if it had already finished or been cancelled."""
        return bool(await self._expire(keys=[keys.campaign(campaign_id)]))

    async def mark_waiting(self, campaign_id: str, job_index: int, opens_at: float, recipients: int) -> None:
        """Shown by `campaign status`: the job waits for its sending window."""
        await self.client.hset(keys.waiting(campaign_id), str(job_index), f"{opens_at:.0f}|{recipients}")

    async def clear_waiting(self, campaign_id: str, job_index: int) -> None:
        await self.client.hdel(keys.waiting(campaign_id), str(job_index))

    async def count_retry(self, campaign_id: str) -> None:
        await self.client.hincrby(keys.campaign(campaign_id), keys.RETRIED, 1)
