--! uses expire_finished
-- Move a campaign to a state, if it is in one of the states it may move from (pause, resume, cancel).
-- Moved to a finished state (cancelled), its keys expire after the retention. A move ends the reason it
-- paused itself (`pause_on_failures`), if it did.
-- KEYS: the campaign's keys (`keys.retained_keys`, its hash first). ARGV: retention (seconds), the
-- target state, then the states it may move from.
-- Returns the state it had (false when there is no such campaign).
local campaign_keys = KEYS
local campaign_key = campaign_keys[1]
local retention, target = ARGV[1], ARGV[2]
local first_source = 3

local state = redis.call('HGET', campaign_key, 'state')
if not state then return false end
for i = first_source, #ARGV do
  if state == ARGV[i] then
    redis.call('HSET', campaign_key, 'state', target)
    redis.call('HDEL', campaign_key, 'paused_reason')
    expire_finished(campaign_keys, target, retention)
    return state
  end
end
return state
