--! uses delivery_bytes, enqueue_callback
-- Record delivery reports: each node's record in its request's delivery string keeps the most final
-- report (a report never moves it back: not to `sent` once final, not from one final to another), so
-- a report that comes twice or late changes nothing. A campaign's first final report of a message
-- counts it (delivered, undelivered, dlr_failed), its trace and, delivered, its time to delivery; the
-- counts of a call go to each campaign's keys once, and only while its hash is there (a late report
-- does not bring a purged campaign back). A report whose request has no header yet (its worker has
-- not settled it) waits in the request's early reports, for `match_early` to record once it has.
-- A first final report of a request whose header has the callbacks flag is told to the producer: a
-- callback in the outbox, one a call for a campaign's (to its callback url), one a single message.
-- KEYS: the early requests' index, the outbox (callbacks, their due index, their ids), then per request
-- its delivery string, its early reports and its callback targets, then per campaign its hash, its
-- traces and its times to delivery. ARGV: now (s), the early reports' lifetime (s), the header's size,
-- a record's size, then the reports, thirteen bytes each, big-endian:
-- request slot (2, from 1), campaign slot (2, from 1; 0 for none), node position (2), status (1),
-- trace code (1), time (4, s), delay bucket (1, from 1; 0 for none); then the length of the delivery
-- strings' key prefix (a request's id is its key without it), then each campaign slot's campaign id.
-- Returns a verdict per report: 1 recorded, 0 nothing new, 2 kept early, 3 its campaign's keys are
-- missing (the caller read no header for it: it reads it and asks again), 4 no node of its request
-- (a position past the last the header names).
local early_index = KEYS[1]
local outbox = {KEYS[2], KEYS[3], KEYS[4]}
local now, early_lifetime, header_size, record_size = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local reports, key_prefix_length = ARGV[5], tonumber(ARGV[6])
local first_campaign_id = 7
local first_request, per_request, per_campaign, per_report = 5, 3, 3, 13
local flags_at, has_callbacks = header_size - 4, 1  -- the header's byte of flags (from 1), before its nodes

local final = 2  -- DeliveryStatus.DELIVERED: it and above are final
local counters = {[2] = 'delivered', [3] = 'undelivered', [4] = 'dlr_failed'}

local function u16_of(bytes, at) return string.byte(bytes, at) * 256 + string.byte(bytes, at + 1) end
local function u16(at) return u16_of(reports, at) end
local function u32(at) return u16(at) * 65536 + u16(at + 2) end

-- The requests' count: the largest request slot a report names; the campaigns' keys come after them.
local requests = 0
for at = 1, #reports, per_report do requests = math.max(requests, u16(at)) end
local campaigns_from = first_request + requests * per_request

local function request_keys(slot)
  local at = first_request + (slot - 1) * per_request
  return KEYS[at], KEYS[at + 1], KEYS[at + 2]
end

-- The callback events of a call's reports, per campaign slot (one callback each, at the end).
local told = {}
local function tell(header, delivery_key, targets_key, campaign_slot, position, status, trace, reported_at)
  local event = {event = 'message.status', message_id = string.sub(delivery_key, key_prefix_length + 1) .. ':' .. position,
                 status = status, trace_code = trace, at = reported_at}
  if header == 'c' then
    event.campaign_id = ARGV[first_campaign_id + campaign_slot - 1]
    told[campaign_slot] = told[campaign_slot] or {}
    table.insert(told[campaign_slot], event)
  else
    local target = redis.call('HGET', targets_key, tostring(position))
    if target then
      target = cjson.decode(target)
      event.id, event.reference = target.id, target.reference
      enqueue_callback(outbox, now, target.url, target.owner, '[' .. cjson.encode(event) .. ']')
    end
  end
end

-- Per campaign slot: {counter or trace or bucket field -> increment}, by key role.
local counts = {}
local function count(slot, role, field)
  counts[slot] = counts[slot] or {{}, {}, {}}
  local by_field = counts[slot][role]
  by_field[field] = (by_field[field] or 0) + 1
end

local verdicts = {}
for at = 1, #reports, per_report do
  local delivery_key, early_key, targets_key = request_keys(u16(at))
  local campaign_slot, position = u16(at + 2), u16(at + 4)
  local status, trace = string.byte(reports, at + 6), string.byte(reports, at + 7)
  local reported_at, bucket = u32(at + 8), string.byte(reports, at + 12)
  local whole_header = redis.call('GETRANGE', delivery_key, 0, header_size - 1)
  local header = string.sub(whole_header, 1, 1)
  -- The header's last four bytes: its nodes and the last one's position (none in an older header).
  local nodes = #whole_header == header_size and u16_of(whole_header, header_size - 3) or 0
  local verdict = 0
  if nodes > 0 and position > u16_of(whole_header, header_size - 1) then
    verdict = 4
  elseif header == '' then
    local field = tostring(position)
    local held = redis.call('HGET', early_key, field)
    if not held or string.byte(held, 1) < final and status > string.byte(held, 1) then
      redis.call('HSET', early_key, field, delivery_record(status, trace, reported_at))
      redis.call('HSETNX', early_key, 'since', now)  -- the first one's arrival: the lifetime counts from it
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
      if header == 'c' and status >= final then
        count(campaign_slot, 1, counters[status])
        if trace ~= 0 then count(campaign_slot, 2, tostring(trace)) end
        if bucket ~= 0 then count(campaign_slot, 3, tostring(bucket)) end
      end
      if status >= final and #whole_header == header_size and string.byte(whole_header, flags_at) % 2 == has_callbacks then
        tell(header, delivery_key, targets_key, campaign_slot, position, status, trace, reported_at)
      end
    end
  end
  verdicts[#verdicts + 1] = verdict
end

for slot, by_role in pairs(counts) do
  local at = campaigns_from + (slot - 1) * per_campaign
  local campaign_key = KEYS[at]
  if redis.call('EXISTS', campaign_key) == 1 then
    local ttl = redis.call('TTL', campaign_key)
    for role = 1, 3 do
      local key = KEYS[at + role - 1]
      for field, amount in pairs(by_role[role]) do redis.call('HINCRBY', key, field, amount) end
      if role > 1 and ttl > 0 and next(by_role[role]) then redis.call('EXPIRE', key, ttl) end
    end
  end
end
for slot, events in pairs(told) do
  local campaign_key = KEYS[campaigns_from + (slot - 1) * per_campaign]
  local url = redis.call('HGET', campaign_key, 'callback_url')
  if url then enqueue_callback(outbox, now, url, campaign_key, cjson.encode(events)) end
end
return verdicts
