"""Campaign state as workers see it: start a job, expire a campaign, count retries, hold the account.

A job's progress is the number of its recipients settled (so workers may chunk
differently); `worker.ledger` moves it forward.
"""

from __future__ import annotations

import hashlib
import time

import msgspec
import redis.asyncio as aioredis

from schemas import keys
from schemas.campaign import CampaignSpec, CampaignState, Job
from schemas.errors import GatewayError
from schemas.settings import Settings

# KEYS: campaign, progress, jobs, the account's hold. ARGV: job, now, this worker's key fingerprint,
# probe interval (s). Returns {state, spec, settled, job, release, held reason, probe}: `release` while
# a scheduled campaign is held until then; `held reason` while the account is held for this worker
# (a gateway out of reach holds every worker, a refused key those with that key), with `probe` 1
# when this worker is the one to ask the gateway now (the next may in a probe interval).
_BEGIN_JOB_LUA = """
local job, now = ARGV[1], tonumber(ARGV[2])
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return false end
redis.call('HSET', KEYS[1], 'seen_at', ARGV[2])
local spec = redis.call('HGET', KEYS[1], 'spec')
-- A scheduled campaign is only looked at until its release: it can still be cancelled.
local release = tonumber(redis.call('HGET', KEYS[1], 'release_at') or '0')
if (state == 'queued' or state == 'scheduled') and release > now then
  return {state, spec, '0', false, tostring(release), false, 0}
end
local sending = state == 'queued' or state == 'scheduled' or state == 'running' or state == 'held'
local hold = redis.call('HMGET', KEYS[4], 'reason', 'key', 'probe_at', 'code')
-- A refused key holds the workers that have it; one with another key (a rotated one) sends.
local ours = hold[1] and not (hold[4] == 'UNAUTHORIZED' and hold[2] ~= ARGV[3])
if sending and ours then
  if state ~= 'held' then
    redis.call('HSET', KEYS[1], 'state', 'held', 'held_reason', hold[1])
  end
  local probe = 0
  if tonumber(hold[3] or '0') <= now then
    redis.call('HSET', KEYS[4], 'probe_at', now + tonumber(ARGV[4]))
    probe = 1
  end
  return {'held', spec, '0', false, false, hold[1], probe}
end
if sending and state ~= 'running' then
  state = 'running'
  redis.call('HSET', KEYS[1], 'state', state)
  redis.call('HDEL', KEYS[1], 'held_reason')
  redis.call('HSETNX', KEYS[1], 'started_at', ARGV[2])
end
-- A paused job is only looked at, not loaded: it will be back.
local loaded = false
if state ~= 'paused' then loaded = redis.call('HGET', KEYS[3], job) or false end
return {state, spec, redis.call('HGET', KEYS[2], job) or '0', loaded, false, false, 0}
"""

# KEYS: the account's hold, campaign. ARGV: code, reason, now, the refused key's fingerprint, probe
# interval (s), lapse (probes). Holds the account (a hold already there keeps its start) and the
# campaign, if sending. A hold no worker renews (by a refused request or probe) lapses after `lapse`
# probe intervals: the workers whose key was refused are gone.
_HOLD_LUA = """
redis.call('HSET', KEYS[1], 'code', ARGV[1], 'reason', ARGV[2], 'key', ARGV[4],
           'probe_at', tonumber(ARGV[3]) + tonumber(ARGV[5]))
redis.call('HSETNX', KEYS[1], 'since', ARGV[3])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[5]) * tonumber(ARGV[6])))
local state = redis.call('HGET', KEYS[2], 'state')
if state == 'queued' or state == 'running' or state == 'scheduled' then
  redis.call('HSET', KEYS[2], 'state', 'held')
end
if state then
  redis.call('HSET', KEYS[2], 'held_reason', ARGV[2], 'last_error', ARGV[1] .. ': ' .. ARGV[2],
             'last_error_at', ARGV[3])
end
"""

# Cancels a campaign past its expiry, unless it already finished or was cancelled.
_EXPIRE_LUA = """
local state = redis.call('HGET', KEYS[1], 'state')
local open = {queued = true, scheduled = true, running = true, held = true, paused = true}
if open[state] then
  redis.call('HSET', KEYS[1], 'state', 'cancelled')
  return 1
end
return 0
"""

# A hold that no worker renews for this many probe intervals lapses.
HOLD_LAPSE_PROBES = 10

_job_decoder = msgspec.msgpack.Decoder(Job)
_spec_decoder = msgspec.json.Decoder(CampaignSpec)


class JobStart(msgspec.Struct, frozen=True, kw_only=True):
    state: str
    spec: CampaignSpec
    job: Job | None  # None while the campaign is paused, held, or waits for its release
    settled: int  # recipients of this job already settled
    held_until: float | None = None  # a scheduled campaign's release (Unix time), while it is held
    held_reason: str | None = None  # while the account is held: why
    probe: bool = False  # held: this worker asks the gateway now whether the account may send again


class CampaignStore:
    def __init__(self, client: aioredis.Redis, settings: Settings) -> None:
        self.client = client
        self._hold_key = keys.account_hold(settings.sid)
        self._key_fingerprint = key_fingerprint(settings)
        self._probe_s = settings.hold_probe_ms / 1000
        self._begin = client.register_script(_BEGIN_JOB_LUA)
        self._expire = client.register_script(_EXPIRE_LUA)
        self._hold = client.register_script(_HOLD_LUA)

    async def begin_job(self, campaign_id: str, job_index: int) -> JobStart | None:
        """Mark the campaign running (or held, while the account is) and load what the job needs;
        None if the campaign or job is gone."""
        found = await self._begin(
            keys=[keys.campaign(campaign_id), keys.progress(campaign_id), keys.jobs(campaign_id),
                  self._hold_key],
            args=[job_index, time.time(), self._key_fingerprint, self._probe_s],
        )  # fmt: skip
        if not found:
            return None
        state, spec, settled, job, release, held_reason, probe = found
        state = state.decode()
        waits = release is not None or held_reason is not None
        if job is None and state != CampaignState.PAUSED and not waits:
            return None
        return JobStart(
            state=state,
            spec=_spec_decoder.decode(spec),
            job=_job_decoder.decode(job) if job is not None else None,
            settled=int(settled),
            held_until=float(release) if release is not None else None,
            held_reason=held_reason.decode() if held_reason is not None else None,
            probe=probe == 1,
        )

    async def hold_account(self, campaign_id: str, fault: GatewayError) -> None:
        """Stop the account's sending (for a refused key, that of the workers with this key): their
        jobs wait, the campaign's state says why, until a probe finds the gateway taking requests."""
        await self._hold(
            keys=[self._hold_key, keys.campaign(campaign_id)],
            args=[fault.code, fault.message, time.time(), self._key_fingerprint, self._probe_s,
                  HOLD_LAPSE_PROBES],
        )  # fmt: skip

    async def lift_hold(self) -> None:
        """The gateway takes the account's requests again: held jobs send when they next come back."""
        await self.client.delete(self._hold_key)

    async def note_error(self, campaign_id: str, error: GatewayError) -> None:
        """Shown by `campaign status`: the last gateway error one of the campaign's chunks met."""
        await self.client.hset(
            keys.campaign(campaign_id),
            mapping={keys.LAST_ERROR: f"{error.code}: {error.message}", keys.LAST_ERROR_AT: time.time()},
        )

    async def expire(self, campaign_id: str) -> bool:
        """Cancel the campaign: its expiry passed. False if it had already finished or been cancelled."""
        return bool(await self._expire(keys=[keys.campaign(campaign_id)]))

    async def mark_waiting(self, campaign_id: str, job_index: int, opens_at: float, recipients: int) -> None:
        """Shown by `campaign status`: the job waits for its sending window."""
        await self.client.hset(keys.waiting(campaign_id), str(job_index), f"{opens_at:.0f}|{recipients}")

    async def clear_waiting(self, campaign_id: str, job_index: int) -> None:
        await self.client.hdel(keys.waiting(campaign_id), str(job_index))

    async def count_retry(self, campaign_id: str, error: GatewayError) -> None:
        """A request retried after `error`: counted, and shown as the campaign's last error."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hincrby(keys.campaign(campaign_id), keys.RETRIED, 1)
            pipe.hset(
                keys.campaign(campaign_id),
                mapping={keys.LAST_ERROR: f"{error.code}: {error.message}", keys.LAST_ERROR_AT: time.time()},
            )
            await pipe.execute()


def key_fingerprint(settings: Settings) -> str:
    """Tells API keys apart in Redis without storing one: a worker with another key than the one
    refused (restarted with a rotated key) is not held by the refusal."""
    return hashlib.sha256(f"{settings.sid}:{settings.api_key}".encode()).hexdigest()[:16]
