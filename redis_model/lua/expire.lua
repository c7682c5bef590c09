--! uses expire_finished
-- Cancel a campaign past its expiry, unless it already finished or was cancelled; its keys expire
-- after the retention.
-- KEYS: the campaign's keys (`keys.retained_keys`, its hash first). ARGV: retention (seconds).
-- Returns 1 if it was cancelled now.
local campaign_keys = KEYS
local campaign_key = campaign_keys[1]
local retention = ARGV[1]

local open = {queued = true, scheduled = true, running = true, held = true, paused = true}
if open[redis.call('HGET', campaign_key, 'state')] then
  redis.call('HSET', campaign_key, 'state', 'cancelled')
  expire_finished(campaign_keys, 'cancelled', retention)
  return 1
end
return 0
