--! uses complete_if_done
-- The producer read its last row: write what it counted, drop its lease, and complete a campaign
-- whose workers settled everything already. The seen set (a million numbers takes Redis a tenth of a
-- second to free) is unlinked: freed off Redis's main thread.
-- KEYS: campaign, seen set. ARGV: now, then the (field, value) pairs publishing counted.
-- Returns the campaign's state.
local campaign_key, seen_key = KEYS[1], KEYS[2]
local now = ARGV[1]
local first_count = 2

redis.call('HSET', campaign_key, unpack(ARGV, first_count))
redis.call('HDEL', campaign_key, 'publishing')
redis.call('UNLINK', seen_key)
complete_if_done(campaign_key, now)
return redis.call('HGET', campaign_key, 'state')
