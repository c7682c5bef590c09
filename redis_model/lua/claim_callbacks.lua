-- Claim the callbacks that are due: up to `count` of them scored `now` or earlier, each moved to the
-- claim's end in the same step, so that no other sender takes them meanwhile (a sender that dies leaves
-- them to be taken again then). A due id with no callback stored (told, then indexed again by a sender
-- that lost its claim) leaves the index.
-- KEYS: the callbacks, their due index. ARGV: now, the claims' end, count.
-- Returns id, callback as stored, for each claimed.
local callbacks_key, due_key = KEYS[1], KEYS[2]
local now, claimed_until, count = ARGV[1], ARGV[2], tonumber(ARGV[3])

local claimed = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', due_key, '-inf', now, 'LIMIT', 0, count)) do
  local stored = redis.call('HGET', callbacks_key, id)
  if stored then
    redis.call('ZADD', due_key, 'XX', claimed_until, id)
    claimed[#claimed + 1] = id
    claimed[#claimed + 1] = stored
  else
    redis.call('ZREM', due_key, id)
  end
end
return claimed
