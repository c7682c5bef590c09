-- Show a gateway error a chunk met as the campaign's last error, counting a retry when it was one;
-- only while the campaign is there: one expired or purged (`campaign purge --force` while its workers
-- drain it) gets no hash back, which would never expire.
-- KEYS: campaign. ARGV: the error as shown (`code: message`), when (Unix seconds), retries to count
-- ("0" or "1"). Returns 1, or 0 when the campaign is gone (nothing written).
local campaign_key = KEYS[1]
local shown, at, retried = ARGV[1], ARGV[2], tonumber(ARGV[3])

if redis.call('EXISTS', campaign_key) == 0 then return 0 end
if retried > 0 then redis.call('HINCRBY', campaign_key, 'retried', retried) end
redis.call('HSET', campaign_key, 'last_error', shown, 'last_error_at', at)
return 1
