-- Hold the account's sending (a hold already there keeps its start) and the campaign that met the
-- fault, if it is sending. A hold no worker renews (by a refused request or probe) lapses after
-- `lapse` probe intervals: the workers whose configuration was refused are gone.
-- KEYS: the account's hold, and the campaign that met the fault (none for a single message).
-- ARGV: code, reason, now, the fingerprint of the configuration (key, SID, gateway URL) that met the
-- fault, probe interval (s), lapse (probe intervals), the
-- campaign's last error as shown, and the hold's scope: `config` (the key or SID refused: only
-- workers with that configuration wait) or `gateway` (out of reach: every worker waits).
local hold_key, campaign_key = KEYS[1], KEYS[2]
local code, reason, now_text, fingerprint = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now = tonumber(now_text)
local probe_s, lapse, last_error, scope = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], ARGV[8]

redis.call('HSET', hold_key, 'code', code, 'reason', reason, 'key', fingerprint, 'scope', scope,
           'probe_at', now + probe_s)
redis.call('HSETNX', hold_key, 'since', now_text)
redis.call('EXPIRE', hold_key, math.ceil(probe_s * lapse))
if not campaign_key then return end
local state = redis.call('HGET', campaign_key, 'state')
if state == 'queued' or state == 'running' or state == 'scheduled' then
  redis.call('HSET', campaign_key, 'state', 'held')
end
if state then
  redis.call('HSET', campaign_key, 'held_reason', reason, 'last_error', last_error, 'last_error_at', now_text)
end
