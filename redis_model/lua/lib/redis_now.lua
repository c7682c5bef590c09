-- redis_now(): Redis's clock in Unix seconds: every worker and producer reads the same one.
local function redis_now()
  local clock = redis.call('TIME')
  return tonumber(clock[1]) + tonumber(clock[2]) / 1000000
end
