-- Queue single messages without an idempotency key, each on its lane's stream: one command for a
-- batch or a turn of the event loop's requests, where a pipeline of XADDs costs the client a reply
-- (and a read timeout) each.
-- KEYS: the lanes' streams, in `keys.LANES` order. ARGV: the entry's field name (`m`), then per
-- message its lane's position in KEYS (from 1) and the message. Returns the entries' ids, in order.
local field = ARGV[1]
local first_message = 2

local entry_ids = {}
for at = first_message, #ARGV, 2 do
  local stream_key = KEYS[tonumber(ARGV[at])]
  entry_ids[#entry_ids + 1] = redis.call('XADD', stream_key, '*', field, ARGV[at + 1])
end
return entry_ids
