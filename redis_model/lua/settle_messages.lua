--! uses enqueue_callback
-- Settle single messages of one lane: each one's status hash gets its end (status, time, and Kaleyra's
-- message id, the code and the producer's reference where it has them), loses its `owner` and expires
-- after the retention; then their stream entries are acknowledged and deleted. The hash is written
-- before the entry goes, so a reader of the two never misses the message. The requests Kaleyra
-- accepted get their delivery string's header (for their delivery reports) and go in the index of
-- requests to reconcile (looked at `poll after` seconds from now). A message with a callback url gets
-- a callback of its end in the outbox, and, submitted, a target for its delivery report's callback.
-- KEYS: the lane's stream, the index of unreported requests, the outbox (callbacks, their due index,
-- their ids), then each message's hash, then per request its delivery string and its callback targets.
-- ARGV: group, now, retention (seconds), the messages' count, poll after (seconds; 0: not indexed), then
-- per request, in the order of its keys, its id, its header and its callback targets (a JSON object,
-- position -> target; '' for none), then per message, in the order of the hashes, seven values: entry
-- id, status, message id, code, reference, callback url, callback event (an empty string for what it
-- has not; a reference is "=" then the reference, since one may be empty).
local stream_key, unreported_key, group, now, retention = KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3]
local outbox = {KEYS[3], KEYS[4], KEYS[5]}
local messages, poll_after = tonumber(ARGV[4]), tonumber(ARGV[5])
local first_hash, first_request_value, per_message, per_request = 6, 6, 7, 3

local first_request = first_hash + messages
local requests = (#KEYS - first_request + 1) / 2
local first_value = first_request_value + per_request * requests
for r = 0, requests - 1 do
  local delivery_key, targets_key = KEYS[first_request + 2 * r], KEYS[first_request + 2 * r + 1]
  local at = first_request_value + per_request * r
  redis.call('SET', delivery_key, ARGV[at + 1], 'NX', 'EX', retention)  -- a settlement run again keeps its reports
  if poll_after > 0 then redis.call('ZADD', unreported_key, tonumber(now) + poll_after, ARGV[at]) end
  if ARGV[at + 2] ~= '' then
    for position, target in pairs(cjson.decode(ARGV[at + 2])) do redis.call('HSET', targets_key, position, target) end
    redis.call('EXPIRE', targets_key, retention)
  end
end
local entries = {}
for i = first_hash, first_request - 1 do
  local at = first_value + (i - first_hash) * per_message
  local entry, status, message_id, code, reference = ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3],
                                                     ARGV[at + 4]
  local callback_url, callback_event = ARGV[at + 5], ARGV[at + 6]
  local fields = {'status', status, 'at', now}
  if message_id ~= '' then fields[#fields + 1] = 'message_id'; fields[#fields + 1] = message_id end
  if code ~= '' then fields[#fields + 1] = 'code'; fields[#fields + 1] = code end
  if reference ~= '' then fields[#fields + 1] = 'reference'; fields[#fields + 1] = string.sub(reference, 2) end
  redis.call('HSET', KEYS[i], unpack(fields))
  redis.call('HDEL', KEYS[i], 'owner')
  if callback_url ~= '' then enqueue_callback(outbox, now, callback_url, KEYS[i], '[' .. callback_event .. ']') end
  redis.call('EXPIRE', KEYS[i], retention)
  entries[#entries + 1] = entry
end
if #entries > 0 then
  redis.call('XACK', stream_key, group, unpack(entries))
  redis.call('XDEL', stream_key, unpack(entries))
end
return #entries
