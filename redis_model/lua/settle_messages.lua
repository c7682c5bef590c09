-- Settle single messages of one lane: each one's status hash gets its end (status, time, and Kaleyra's
-- message id, the code and the producer's reference where it has them), loses its `owner` and expires
-- after the retention; then their stream entries are acknowledged and deleted. The hash is written
-- before the entry goes, so a reader of the two never misses the message. The requests Kaleyra
-- accepted get their delivery string's header (for their delivery reports) and go in the index of
-- requests to reconcile (looked at `poll after` seconds from now).
-- KEYS: the lane's stream, the index of unreported requests, then each message's hash, then each
-- request's delivery string. ARGV: group, now, retention (seconds), the messages' count, poll after
-- (seconds; 0: not indexed), then per request, in the order of its delivery string, its id and its
-- header, then per message, in the order of the hashes, five values: entry id, status, message id,
-- code, reference (an empty string for what it has not; a reference is "=" then the reference, since
-- one may be empty).
local stream_key, unreported_key, group, now, retention = KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3]
local messages, poll_after = tonumber(ARGV[4]), tonumber(ARGV[5])
local first_hash, first_request_value, per_message = 3, 6, 5

local first_request = first_hash + messages
local first_value = first_request_value + 2 * (#KEYS - first_request + 1)
for i = first_request, #KEYS do
  local at = first_request_value + 2 * (i - first_request)
  redis.call('SET', KEYS[i], ARGV[at + 1], 'NX', 'EX', retention)  -- a settlement run again keeps its reports
  if poll_after > 0 then redis.call('ZADD', unreported_key, tonumber(now) + poll_after, ARGV[at]) end
end
local entries = {}
for i = first_hash, first_request - 1 do
  local at = first_value + (i - first_hash) * per_message
  local entry, status, message_id, code, reference = ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3],
                                                     ARGV[at + 4]
  local fields = {'status', status, 'at', now}
  if message_id ~= '' then fields[#fields + 1] = 'message_id'; fields[#fields + 1] = message_id end
  if code ~= '' then fields[#fields + 1] = 'code'; fields[#fields + 1] = code end
  if reference ~= '' then fields[#fields + 1] = 'reference'; fields[#fields + 1] = string.sub(reference, 2) end
  redis.call('HSET', KEYS[i], unpack(fields))
  redis.call('HDEL', KEYS[i], 'owner')
  redis.call('EXPIRE', KEYS[i], retention)
  entries[#entries + 1] = entry
end
if #entries > 0 then
  redis.call('XACK', stream_key, group, unpack(entries))
  redis.call('XDEL', stream_key, unpack(entries))
end
return #entries
