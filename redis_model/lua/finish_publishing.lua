--! uses complete_if_done
-- The producer read its last row: write what it counted, drop its lease, and complete a campaign
-- whose workers settled everything already. The seen set (a million numbers takes Redis a tenth of a
-- second to free) is unlinked: freed off Redis's main thread.
-- KEYS: seen set, then the campaign's keys (`keys.retained_keys`, its hash first). ARGV: now,
-- retention (seconds), then the (field, value) pairs publishing counted.
-- Returns the campaign's state (a purged campaign: cancelled, nothing written).
local seen_key, campaign_keys = KEYS[1], {unpack(KEYS, 2)}
local campaign_key = campaign_keys[1]
local now, retention = ARGV[1], ARGV[2]
local first_count = 3

if redis.call('EXISTS', campaign_key) == 0 then return 'cancelled' end
redis.call('HSET', campaign_key, unpack(ARGV, first_count))
redis.call('HDEL', campaign_key, 'publishing')
redis.call('UNLINK', seen_key)
complete_if_done(campaign_keys, now, retention)
return redis.call('HGET', campaign_key, 'state')
