--! uses delivery_bytes
-- Record delivery reports: each node's record in its request's delivery string keeps the most final
-- report (a report never moves it back: not to `sent` once final, not from one final to another), so
-- a report that comes twice or late changes nothing. A campaign's first final report of a message
-- counts it (delivered, undelivered, dlr_failed), its trace and, delivered, its time to delivery. A
-- report whose request has no header yet (its worker has not settled it) waits in the request's early
-- reports, for `match_early` to record once it has.
-- KEYS: the early requests' index, then per request its delivery string and its early reports, then
-- per campaign its hash, its traces and its times to delivery. ARGV: now (s), the early reports'
-- lifetime (s), the header's size, a record's size, then per report eight values: its request's
-- position in KEYS' requests (from 1), its campaign's (from 1; 0 for none), the node's position, the
-- status byte, the trace byte, the trace's name, the report's time (s) and its delay bucket ('' for
-- none). Returns a verdict per report: 1 recorded, 0 nothing new, 2 kept early, 3 its campaign's keys
-- are missing (the caller read no header for it: it reads it and asks again).
local early_index = KEYS[1]
local now, early_lifetime, header_size, record_size = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local first_request, per_request, per_campaign = 2, 2, 3
local first_report, per_report = 5, 8

local final = 2  -- DeliveryStatus.DELIVERED: it and above are final
-- The requests' count: the largest request slot a report names; the campaigns' keys come after them.
local requests = 0
for at = first_report, #ARGV, per_report do requests = math.max(requests, tonumber(ARGV[at])) end
local campaigns_from = first_request + requests * per_request

local function request_keys(slot)
  local at = first_request + (slot - 1) * per_request
  return KEYS[at], KEYS[at + 1]
end

local function campaign_keys(slot)
  local at = campaigns_from + (slot - 1) * per_campaign
  return KEYS[at], KEYS[at + 1], KEYS[at + 2]
end

local counters = {[2] = 'delivered', [3] = 'undelivered', [4] = 'dlr_failed'}
local verdicts = {}
for at = first_report, #ARGV, per_report do
  local delivery_key, early_key = request_keys(tonumber(ARGV[at]))
  local campaign_slot, position = tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])
  local status, trace, trace_name = tonumber(ARGV[at + 3]), tonumber(ARGV[at + 4]), ARGV[at + 5]
  local reported_at, bucket = tonumber(ARGV[at + 6]), ARGV[at + 7]
  local header = redis.call('GETRANGE', delivery_key, 0, 0)
  local verdict = 0
  if header == '' then
    local field = tostring(position)
    local held = redis.call('HGET', early_key, field)
    if not held or string.byte(held, 1) < final and status > string.byte(held, 1) then
      redis.call('HSET', early_key, field, delivery_record(status, trace, reported_at))
      redis.call('EXPIRE', early_key, early_lifetime)
      redis.call('ZADD', early_index, 'NX', now, delivery_key)
    end
    verdict = 2
  elseif header == 'c' and campaign_slot == 0 then
    verdict = 3
  else
    local offset = header_size + position * record_size
    local old = redis.call('GETRANGE', delivery_key, offset, offset)
    local old_status = old == '' and 0 or string.byte(old)
    if old_status < final and status > old_status then
      redis.call('SETRANGE', delivery_key, offset, delivery_record(status, trace, reported_at))
      verdict = 1
      local campaign_key, traces_key, times_key
      if header == 'c' then campaign_key, traces_key, times_key = campaign_keys(campaign_slot) end
      -- A campaign purged or expired since is not brought back (without an expiry) by a late report.
      if header == 'c' and status >= final and redis.call('EXISTS', campaign_key) == 1 then
        redis.call('HINCRBY', campaign_key, counters[status], 1)
        if trace_name ~= '' then redis.call('HINCRBY', traces_key, trace_name, 1) end
        if bucket ~= '' then redis.call('HINCRBY', times_key, bucket, 1) end
        local ttl = redis.call('TTL', campaign_key)
        if ttl > 0 then
          redis.call('EXPIRE', traces_key, ttl)
          redis.call('EXPIRE', times_key, ttl)
        end
      end
    end
  end
  verdicts[#verdicts + 1] = verdict
end
return verdicts
