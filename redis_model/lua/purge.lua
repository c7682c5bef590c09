-- `campaign purge`: remove a finished campaign's keys now (unlinked: freed off Redis's main thread),
-- its entry in the index and in the campaigns whose end is to be told. Its outcome records are renamed,
-- not removed: the caller reads the requests' ids from them, removes those requests' delivery keys and
-- then the records (kept a day, should it die before). A cancelled one whose workers have not yet
-- settled every recipient cancelled is purged only when forced: a worker may still be writing to it.
-- KEYS: the index by creation, the renamed outcome records, the campaigns whose end is to be told, the
-- campaign's outcome records, then the campaign's keys (`keys.all_keys`, its hash first).
-- ARGV: the campaign's id, "1" to force.
-- Returns {verdict, state, pending}: `purged`, `unfinished` or `settling` (nothing removed), or
-- `unknown` when there is no such campaign.
local index_key, purged_outcomes_key, told_key, outcomes_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local campaign_keys = {unpack(KEYS, 5)}
local campaign_key = campaign_keys[1]
local campaign_id, force = ARGV[1], ARGV[2] == '1'

local c = redis.call('HMGET', campaign_key, 'state', 'total', 'submitted', 'failed', 'unknown', 'cancelled')
local state = c[1]
if not state then
  redis.call('ZREM', index_key, campaign_id)
  return {'unknown', '', 0}
end
local pending = tonumber(c[2] or '0')
for i = 3, 6 do pending = pending - tonumber(c[i] or '0') end
if state ~= 'completed' and state ~= 'failed' and state ~= 'cancelled' then return {'unfinished', state, pending} end
if pending > 0 and not force then return {'settling', state, pending} end
if redis.call('EXISTS', outcomes_key) == 1 then
  redis.call('RENAME', outcomes_key, purged_outcomes_key)
  redis.call('EXPIRE', purged_outcomes_key, 86400)
end
redis.call('UNLINK', unpack(campaign_keys))
redis.call('ZREM', index_key, campaign_id)
redis.call('ZREM', told_key, campaign_id)
return {'purged', state, pending}
