--! uses redis_now
-- renew_lease(campaign, lease_s): the producer's `publishing` lease, renewed on Redis's clock (status
-- compares it with the same clock); returns the state, so that a cancel stops the reading.
local function renew_lease(campaign, lease_s)
  redis.call('HSET', campaign, 'publishing', tostring(redis_now() + tonumber(lease_s)))
  return redis.call('HGET', campaign, 'state')
end
