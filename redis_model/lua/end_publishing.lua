--! uses complete_if_done
-- A campaign was just cancelled: a producer still publishing it stops at its next page, and one that
-- died mid-file ends here, so the campaign can finish.
-- KEYS: campaign. ARGV: now.
local campaign_key = KEYS[1]
local now = ARGV[1]

if redis.call('HDEL', campaign_key, 'publishing') == 1 then complete_if_done(campaign_key, now) end
