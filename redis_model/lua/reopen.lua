-- `campaign resend`, in one step so that it applies whole: the picked chunks' outcome records are
-- replaced by the caller's marked ones (each only if it is still the record the caller read: a
-- recipient is republished once), the campaign's counters and a hash of counts by code (the failures
-- for `--failed`/`--unknown`, the traces for `--undelivered`) move by the amounts given (a code's count
-- that reaches 0 goes), and a completed or failed campaign is queued again: its keys no longer expire,
-- and, with a callback url, its end is told again (it is watched again). The failure guard
-- (`pause_on_failures`) counts afresh from here: what is sent again is judged on its own.
-- KEYS: campaign, the counts by code, outcomes, the campaigns watched for their callbacks, the failures
-- by code, then the campaign's keys (`keys.retained_keys`). ARGV: the campaign's id,
-- the number of (counter, amount) pairs, those pairs, the number of (code, amount) pairs, those pairs,
-- then (outcome field, record as read, marked record) triples.
-- Amounts arrive as strings: HINCRBY takes them as they are. Returns 1, or 0 if a record changed.
local campaign_key, codes_key, outcomes_key, watch_key, failures_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4],
                                                                      KEYS[5]
local campaign_keys = {unpack(KEYS, 6)}
local campaign_id = ARGV[1]
local counter_pairs = tonumber(ARGV[2])
local first_counter = 3
local code_pairs = tonumber(ARGV[first_counter + 2 * counter_pairs])
local first_code = first_counter + 2 * counter_pairs + 1
local first_record = first_code + 2 * code_pairs

for i = first_record, #ARGV, 3 do  -- checked before anything is written
  if redis.call('HGET', outcomes_key, ARGV[i]) ~= ARGV[i + 1] then return 0 end
end
for i = first_counter, first_code - 2, 2 do redis.call('HINCRBY', campaign_key, ARGV[i], ARGV[i + 1]) end
for i = first_code, first_record - 1, 2 do
  local code, amount = ARGV[i], ARGV[i + 1]
  if redis.call('HINCRBY', codes_key, code, amount) <= 0 then redis.call('HDEL', codes_key, code) end
end
for i = first_record, #ARGV, 3 do redis.call('HSET', outcomes_key, ARGV[i], ARGV[i + 2]) end
local c = redis.call('HMGET', campaign_key, 'submitted', 'failed', 'permanent_failed')
local suppressed = tonumber(redis.call('HGET', failures_key, 'SUPPRESSED') or '0')
redis.call('HSET', campaign_key, 'guard_from_attempted', tonumber(c[1] or '0') + tonumber(c[2] or '0') - suppressed,
           'guard_from_failed', tonumber(c[3] or '0'))
local state = redis.call('HGET', campaign_key, 'state')
if state == 'completed' or state == 'failed' then
  redis.call('HSET', campaign_key, 'state', 'queued')
  redis.call('HDEL', campaign_key, 'finished_at')
  for _, key in ipairs(campaign_keys) do redis.call('PERSIST', key) end
  if redis.call('HEXISTS', campaign_key, 'callback_url') == 1 then
    redis.call('ZADD', watch_key, redis.call('TIME')[1], campaign_id)
  end
end
return 1
