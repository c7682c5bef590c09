-- Show a job waiting for its sending window (`campaign status`), only while its campaign is there:
-- one expired or purged gets no key back. A finished campaign's keys expire: the waiting hash, perhaps
-- written first now, gets the same time to live as the campaign's hash.
-- KEYS: campaign, waiting. ARGV: job, `opens at|recipients left` (encoded by the caller).
-- Returns 1, or 0 when the campaign is gone (nothing written).
local campaign_key, waiting_key = KEYS[1], KEYS[2]
local job, entry = ARGV[1], ARGV[2]

local ttl_ms = redis.call('PTTL', campaign_key)
if ttl_ms == -2 then return 0 end
redis.call('HSET', waiting_key, job, entry)
if ttl_ms > 0 then redis.call('PEXPIRE', waiting_key, ttl_ms) end
return 1
