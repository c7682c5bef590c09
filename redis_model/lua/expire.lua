-- Cancel a campaign past its expiry, unless it already finished or was cancelled.
-- KEYS: campaign. Returns 1 if it was cancelled now.
local campaign_key = KEYS[1]

local open = {queued = true, scheduled = true, running = true, held = true, paused = true}
if open[redis.call('HGET', campaign_key, 'state')] then
  redis.call('HSET', campaign_key, 'state', 'cancelled')
  return 1
end
return 0
