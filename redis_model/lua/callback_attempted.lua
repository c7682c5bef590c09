-- Record an attempt of a claimed callback: `sent` (its receiver answered 2xx) or `failed` (given up)
-- removes it; `retry` stores it again (with its attempts counted) and makes it due at `next at`. Its
-- owner's hash, while it exists, counts the attempt, and what it came to.
-- KEYS: the callbacks, their due index, the owner's hash. ARGV: id, what it came to (sent, retry or
-- failed), now, next at (retry), the callback as stored again (retry), the failure's reason ('' for none).
local callbacks_key, due_key, owner_key = KEYS[1], KEYS[2], KEYS[3]
local id, came_to, now, next_at, stored, reason = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]

if redis.call('HEXISTS', callbacks_key, id) == 0 then return 0 end  -- another sender recorded it
if came_to == 'retry' then
  redis.call('HSET', callbacks_key, id, stored)
  redis.call('ZADD', due_key, next_at, id)
else
  redis.call('HDEL', callbacks_key, id)
  redis.call('ZREM', due_key, id)
end
if redis.call('EXISTS', owner_key) == 1 then
  redis.call('HINCRBY', owner_key, 'callback_attempts', 1)
  redis.call('HSET', owner_key, 'callback_at', now)
  if came_to == 'sent' then redis.call('HINCRBY', owner_key, 'callbacks_sent', 1) end
  if came_to == 'failed' then redis.call('HINCRBY', owner_key, 'callbacks_failed', 1) end
  if reason ~= '' then redis.call('HSET', owner_key, 'callback_error', reason) end
end
return 1
