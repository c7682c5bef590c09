-- Release a lock, only the caller's own: compare and delete in one step.
-- KEYS: the lock. ARGV: the caller's token. Returns 1 if it was released.
local lock_key = KEYS[1]
local token = ARGV[1]

if redis.call('GET', lock_key) == token then return redis.call('DEL', lock_key) end
return 0
