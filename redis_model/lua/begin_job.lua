--! uses held_for
-- A worker takes a job: mark the campaign running (or held, while the account is held for this
-- worker) and load what the job needs.
-- KEYS: campaign, progress, jobs, the account's hold. ARGV: job, now, the fingerprint of this worker's
-- configuration (key, SID, gateway URL), probe interval (s).
-- Returns false when the campaign is gone, else {state, spec, progress, job, release, held reason,
-- probe}: `release` while a scheduled campaign waits for it (it can still be cancelled); `held
-- reason` while the account is held for this worker (a gateway out of reach holds every worker, a
-- refused key or SID those with that configuration), `probe` 1 when this worker is the one to ask the gateway now
-- (the next may in a probe interval). A paused job is only looked at, not loaded: it will be back.
local campaign_key, progress_key, jobs_key, hold_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local job, now_text, fingerprint, probe_s = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local now = tonumber(now_text)

local state = redis.call('HGET', campaign_key, 'state')
if not state then return false end
redis.call('HSET', campaign_key, 'seen_at', now_text)
local spec = redis.call('HGET', campaign_key, 'spec')
local release = tonumber(redis.call('HGET', campaign_key, 'release_at') or '0')
if (state == 'queued' or state == 'scheduled') and release > now then
  return {state, spec, '0', false, tostring(release), false, 0}
end

local sending = state == 'queued' or state == 'scheduled' or state == 'running' or state == 'held'
local reason, probe = false, 0
if sending then reason, probe = held_for(hold_key, fingerprint, now, probe_s) end
if reason then
  if state ~= 'held' then redis.call('HSET', campaign_key, 'state', 'held', 'held_reason', reason) end
  return {'held', spec, '0', false, false, reason, probe}
end
if sending and state ~= 'running' then
  state = 'running'
  redis.call('HSET', campaign_key, 'state', state)
  redis.call('HDEL', campaign_key, 'held_reason')
  redis.call('HSETNX', campaign_key, 'started_at', now_text)
end
local loaded = false
if state ~= 'paused' then loaded = redis.call('HGET', jobs_key, job) or false end
return {state, spec, redis.call('HGET', progress_key, job) or '0', loaded, false, false, 0}
