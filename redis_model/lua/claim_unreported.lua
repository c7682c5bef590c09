-- Claim the requests to reconcile that are due: up to `count` members of the index scored `now` or
-- earlier, each moved to the claims' end in the same step, so that no other poller takes them
-- meanwhile (a poller that dies leaves them to be taken again then).
-- KEYS: the index of unreported requests. ARGV: now, the claims' end, count.
-- Returns the claimed request ids.
local unreported_key = KEYS[1]
local now, claimed_until, count = ARGV[1], ARGV[2], tonumber(ARGV[3])

local due = redis.call('ZRANGEBYSCORE', unreported_key, '-inf', now, 'LIMIT', 0, count)
for _, request_id in ipairs(due) do redis.call('ZADD', unreported_key, 'XX', claimed_until, request_id) end
return due
