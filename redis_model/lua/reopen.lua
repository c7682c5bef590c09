-- `campaign resend`, in one step so that it applies whole: the picked chunks' outcome records are
-- marked republished (each only if it is still the record the caller read: a chunk is republished
-- once), their recipients move from failed/unknown back to pending, the new jobs are counted, and a
-- completed or failed campaign is queued again: its keys no longer expire.
-- KEYS: campaign, failures, outcomes, then the campaign's keys (`keys.retained_keys`). ARGV: -failed,
-- -unknown, republished, new jobs, the number of (code, -failed) pairs, those pairs, then (outcome
-- field, record as read, marked record) triples.
-- Amounts arrive as strings: HINCRBY takes them as they are. Returns 1, or 0 if a record changed.
local campaign_key, failures_key, outcomes_key = KEYS[1], KEYS[2], KEYS[3]
local campaign_keys = {unpack(KEYS, 4)}
local failed, unknown, republished, jobs, code_pairs = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local first_code = 6
local first_record = first_code + 2 * code_pairs

for i = first_record, #ARGV, 3 do  -- checked before anything is written
  if redis.call('HGET', outcomes_key, ARGV[i]) ~= ARGV[i + 1] then return 0 end
end
redis.call('HINCRBY', campaign_key, 'failed', failed)
redis.call('HINCRBY', campaign_key, 'unknown', unknown)
redis.call('HINCRBY', campaign_key, 'republished', republished)
redis.call('HINCRBY', campaign_key, 'jobs', jobs)
for i = first_code, first_record - 1, 2 do
  local code, amount = ARGV[i], ARGV[i + 1]
  if redis.call('HINCRBY', failures_key, code, amount) <= 0 then redis.call('HDEL', failures_key, code) end
end
for i = first_record, #ARGV, 3 do redis.call('HSET', outcomes_key, ARGV[i], ARGV[i + 2]) end
local state = redis.call('HGET', campaign_key, 'state')
if state == 'completed' or state == 'failed' then
  redis.call('HSET', campaign_key, 'state', 'queued')
  redis.call('HDEL', campaign_key, 'finished_at')
  for _, key in ipairs(campaign_keys) do redis.call('PERSIST', key) end
end
return 1
