--! uses complete_if_done
-- A campaign was just cancelled: a producer still publishing it stops at its next page, and one that
-- died mid-file ends here, so the campaign can finish.
-- KEYS: the campaign's keys (`keys.retained_keys`, its hash first). ARGV: now, retention (seconds).
local campaign_keys = KEYS
local now, retention = ARGV[1], ARGV[2]

if redis.call('HDEL', campaign_keys[1], 'publishing') == 1 then complete_if_done(campaign_keys, now, retention) end
