-- enqueue_callback(outbox, now, url, owner_key, events): put a callback in the outbox (`outbox`: the
-- callbacks' hash, their due index and the id counter), due at once: a POST to `url` of `events` (a JSON
-- array, as text) on behalf of `owner_key` (a campaign's or a single message's hash), which counts it
-- while it exists. `now` is Unix seconds as text. Returns the callback's id: Redis's clock and a count,
-- so that an id is never given twice, even by a Redis that lost its last writes (a failover, a restore):
-- receivers drop a callback whose id they have seen.
local function enqueue_callback(outbox, now, url, owner_key, events)
  local id = redis.call('TIME')[1] .. '-' .. redis.call('INCR', outbox[3])
  local entry = '{"url":' .. cjson.encode(url) .. ',"owner":' .. cjson.encode(owner_key) .. ',"created":'
                .. now .. ',"attempts":0,"events":' .. events .. '}'
  redis.call('HSET', outbox[1], id, entry)
  redis.call('ZADD', outbox[2], now, id)
  if redis.call('EXISTS', owner_key) == 1 then redis.call('HINCRBY', owner_key, 'callbacks', 1) end
  return id
end
