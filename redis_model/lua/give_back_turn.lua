--! uses redis_now
-- Messages booked on the account's line but not sent (a chunk cut at an opt-out, a turn dropped, a claim
-- not taken) no longer count in today's use (what the daily cap, set now or later, counts).
-- KEYS: the account's rate hash, its messages by day. ARGV: the messages.
local daily_key, messages = KEYS[2], tonumber(ARGV[1])
local today = math.floor(redis_now() / 86400)
if redis.call('HINCRBY', daily_key, today, -messages) < 0 then redis.call('HSET', daily_key, today, 0) end
return 1
