-- Move a campaign to a state, if it is in one of the states it may move from (pause, resume, cancel).
-- KEYS: campaign. ARGV: the target state, then the states it may move from.
-- Returns the state it had (false when there is no such campaign).
local campaign_key = KEYS[1]
local target = ARGV[1]
local first_source = 2

local state = redis.call('HGET', campaign_key, 'state')
if not state then return false end
for i = first_source, #ARGV do
  if state == ARGV[i] then
    redis.call('HSET', campaign_key, 'state', target)
    return state
  end
end
return state
