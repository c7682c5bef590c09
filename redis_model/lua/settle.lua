--! uses complete_if_done, claims, pause_on_failures
-- Record a chunk's outcome, only while the claim is still the caller's: store the outcome record,
-- advance the job's progress and the counters (the failures by code too), and, for a request Kaleyra
-- accepted, write its delivery string's header (for its delivery reports) and put the request in the
-- index of requests to reconcile (looked at `poll after` seconds from now), in one step. A campaign
-- whose permanent failures pass a share of what was attempted pauses itself (`pause_on_failures`).
-- KEYS: campaign, progress, claims, failures, outcomes, the request's delivery string, the index of
-- unreported requests, then the campaign's keys (`keys.retained_keys`, expiring once it finished).
-- ARGV: job, owner, progress after, now, the failure code (or ''), progress before, the outcome
-- record, retention (seconds), the delivery header ('' for none), the request's id, poll after
-- (seconds; 0: not indexed), the failures' share that pauses it (0: never), the least attempted it
-- takes, the chunk's permanent failures (counted in `permanent_failed`), then (counter, amount) pairs.
-- Returns 1, 2 when the campaign paused itself, or 0 if the claim was lost.
local campaign_key, progress_key, claims_key, failures_key, outcomes_key = KEYS[1], KEYS[2], KEYS[3],
                                                                          KEYS[4], KEYS[5]
local delivery_key, unreported_key = KEYS[6], KEYS[7]
local campaign_keys = {unpack(KEYS, 8)}
local job, owner, after, now, code, before, record = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5],
                                                     tonumber(ARGV[6]), ARGV[7]
local retention, delivery_header, request_id, poll_after = ARGV[8], ARGV[9], ARGV[10], tonumber(ARGV[11])
local pause_share, pause_least, permanent = tonumber(ARGV[12]), tonumber(ARGV[13]), tonumber(ARGV[14])
local first_count = 15

if not claimed_by(claims_key, job, owner) then return 0 end
local done = tonumber(redis.call('HGET', progress_key, job) or '0')
if done ~= before or after <= done then return 0 end
redis.call('HSET', progress_key, job, after)
redis.call('HDEL', claims_key, job)
redis.call('HSET', outcomes_key, job .. ':' .. before, record)
redis.call('HSET', campaign_key, 'seen_at', now)
if delivery_header ~= '' then
  redis.call('SET', delivery_key, delivery_header, 'EX', retention)
  if poll_after > 0 then redis.call('ZADD', unreported_key, tonumber(now) + poll_after, request_id) end
end
for i = first_count, #ARGV, 2 do
  local counter, amount = ARGV[i], ARGV[i + 1]
  redis.call('HINCRBY', campaign_key, counter, amount)
  if counter == 'failed' and code ~= '' then redis.call('HINCRBY', failures_key, code, amount) end
end
complete_if_done(campaign_keys, now, retention)
if permanent > 0 then
  redis.call('HINCRBY', campaign_key, 'permanent_failed', permanent)
  if pause_on_failures(campaign_key, failures_key, pause_share, pause_least, code) then return 2 end
end
return 1
