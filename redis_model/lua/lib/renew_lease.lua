--! uses redis_now
-- renew_lease(campaign, lease_s): the producer's `publishing` lease, renewed on Redis's clock (status
-- compares it with the same clock); returns the state, so that a cancel stops the reading. A campaign
-- purged (`campaign purge --force`) reads as cancelled, and nothing is written for it.
local function renew_lease(campaign, lease_s)
  if redis.call('EXISTS', campaign) == 0 then return 'cancelled' end
  redis.call('HSET', campaign, 'publishing', tostring(redis_now() + tonumber(lease_s)))
  return redis.call('HGET', campaign, 'state')
end
