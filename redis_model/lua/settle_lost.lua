--! uses complete_if_done
-- Settle the recipients of a stale claim as unknown (`claim` returned them): their worker may have
-- sent them; they are never resent under `hold`. Only while that very claim is still there.
-- KEYS: campaign, progress, claims, outcomes, then the campaign's keys (`keys.retained_keys`, expiring
-- once it finished). ARGV: job, the stale claim, progress, reach, now, the outcome record (encoded by
-- the caller), retention (seconds). Returns 1, or 0 if another run got there first.
local campaign_key, progress_key, claims_key, outcomes_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local campaign_keys = {unpack(KEYS, 5)}
local job, stale, settled, reach, now, record = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]),
                                                ARGV[5], ARGV[6]
local retention = ARGV[7]

if redis.call('HGET', claims_key, job) ~= stale then return 0 end
if tonumber(redis.call('HGET', progress_key, job) or '0') ~= settled then return 0 end
redis.call('HINCRBY', campaign_key, 'unknown', reach - settled)
redis.call('HSET', outcomes_key, job .. ':' .. settled, record)
redis.call('HSET', progress_key, job, reach)
redis.call('HDEL', claims_key, job)
complete_if_done(campaign_keys, now, retention)
return 1
