-- `campaign purge`: remove a finished campaign's keys now (unlinked: freed off Redis's main thread)
-- and its entry in the index. A cancelled one whose workers have not yet settled every recipient
-- cancelled is purged only when forced: a worker may still be writing to it.
-- KEYS: the campaign's keys (`keys.all_keys`, its hash first), then the index by creation.
-- ARGV: the campaign's id, "1" to force.
-- Returns {verdict, state, pending}: `purged`, `unfinished` or `settling` (nothing removed), or
-- `unknown` when there is no such campaign.
local campaign_keys, index_key = {unpack(KEYS, 1, #KEYS - 1)}, KEYS[#KEYS]
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
redis.call('UNLINK', unpack(campaign_keys))
redis.call('ZREM', index_key, campaign_id)
return {'purged', state, pending}
