--! uses redis_now
-- Mark single messages `sending` before their POST: each still pending for this consumer gets status
-- `sending` and owner `consumer|lease end` (ms, on Redis's clock), and its idle time restarted, so
-- that no other worker reclaims it while the lease lasts. One another worker took is left alone, and
-- so is one already `sending`: a copy of it (taken over by a reclaim pass while its batch waited)
-- is being sent; a retry gives its messages back (`queued`) before it marks them again.
-- KEYS: the lane's stream, then each message's hash. ARGV: group, consumer, lease (ms), then each
-- message's entry id, in the order of the hashes. Returns the 1-based positions of those marked.
local stream_key, group, consumer, lease_ms = KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3])
local first_entry = 4

local owner = consumer .. '|' .. tostring(math.floor(redis_now() * 1000 + lease_ms))
local marked = {}
for i = 2, #KEYS do
  local entry = ARGV[first_entry + i - 2]
  local pending = redis.call('XPENDING', stream_key, group, entry, entry, 1)
  local sending = redis.call('HGET', KEYS[i], 'status') == 'sending'
  if pending[1] and pending[1][2] == consumer and not sending then
    redis.call('XCLAIM', stream_key, group, consumer, 0, entry, 'JUSTID')
    redis.call('HSET', KEYS[i], 'status', 'sending', 'owner', owner)
    marked[#marked + 1] = i - 1
  end
end
return marked
