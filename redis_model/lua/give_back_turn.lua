--! uses redis_now
-- Messages booked on the account's line but not sent (a chunk cut at an opt-out, a turn dropped, a claim
-- not taken) no longer count against today's daily cap, when the account has one.
-- KEYS: the account's rate hash, its messages by day. ARGV: the messages.
local rate_key, daily_key, messages = KEYS[1], KEYS[2], tonumber(ARGV[1])
if not redis.call('HGET', rate_key, 'daily') then return 0 end
local today = math.floor(redis_now() / 86400)
if redis.call('HINCRBY', daily_key, today, -messages) < 0 then redis.call('HSET', daily_key, today, 0) end
return 1
