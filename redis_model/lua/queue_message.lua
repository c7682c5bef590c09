-- Queue a single message with an idempotency key: the first request adds the entry and remembers
-- its id; a retry with the same key adds nothing and gets what the first stored.
-- KEYS: the idempotency key, the lane's stream. ARGV: the entry's field name (`m`) and the message,
-- the request's digest, the key's lifetime (seconds), the lane's id prefix (`txn-`).
-- Returns what the key holds, `message id|request digest` (the caller compares the digests), and 1
-- when it held it already (nothing was queued), else 0.
-- The entry is added before the key is set (SET NX GET), not after a GET: a first request, the
-- usual case, costs three commands with EVALSHA rather than four; a retry removes the entry it
-- added, unseen by any worker since the script runs whole.
local idempotency_key = KEYS[1]
local stream_key = KEYS[2]
local field = ARGV[1]
local message = ARGV[2]
local request_digest = ARGV[3]
local lifetime_s = ARGV[4]
local id_prefix = ARGV[5]

local entry_id = redis.call('XADD', stream_key, '*', field, message)
local stored = id_prefix .. entry_id .. '|' .. request_digest
local held = redis.call('SET', idempotency_key, stored, 'NX', 'GET', 'EX', lifetime_s)
if held then
  redis.call('XDEL', stream_key, entry_id)
  return {held, 1}
end
return {stored, 0}
