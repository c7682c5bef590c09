--! uses renew_lease
-- Renew the producer's publishing lease while it reads rows that publish no job.
-- KEYS: campaign. ARGV: the lease in seconds. Returns the state, so that a cancel stops the reading.
local campaign_key = KEYS[1]
local lease_s = ARGV[1]

return renew_lease(campaign_key, lease_s)
