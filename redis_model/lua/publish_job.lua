--! uses renew_lease
-- Write a job as it is published, count it in the campaign, and renew the publishing lease, in one
-- round trip.
-- KEYS: campaign, jobs. ARGV: the lease in seconds, the job's index, the job (encoded by the caller),
-- its recipients. Returns the state, so that a cancel stops the reading (a purged campaign: cancelled,
-- nothing written).
local campaign_key, jobs_key = KEYS[1], KEYS[2]
local lease_s, index, job, recipients = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]

if redis.call('EXISTS', campaign_key) == 0 then return 'cancelled' end
redis.call('HSET', jobs_key, index, job)
redis.call('HINCRBY', campaign_key, 'total', recipients)
redis.call('HSET', campaign_key, 'jobs', index + 1)
return renew_lease(campaign_key, lease_s)
