--! uses enqueue_callback
-- Tell the end of the watched campaigns that finished: each gets a callback of its state and counts in
-- the outbox and leaves the watch, in one step (told once). A campaign whose hash is gone (purged,
-- expired) or names no callback url leaves it untold; one still running is looked at again at `next look`.
-- KEYS: the watched campaigns, the outbox (callbacks, their due index, their ids), then the campaigns'
-- hashes. ARGV: now, next look, then the campaigns' ids, in the order of their hashes.
-- Returns the campaigns told.
local watch_key = KEYS[1]
local outbox = {KEYS[2], KEYS[3], KEYS[4]}
local now, next_look = ARGV[1], ARGV[2]
local first_campaign, first_id = 5, 3
local finished = {completed = true, failed = true, cancelled = true}

local told = 0
for i = first_campaign, #KEYS do
  local campaign_id = ARGV[i - first_campaign + first_id]
  local due = redis.call('ZSCORE', watch_key, campaign_id)
  -- Another sender's pass may have told it (or looked at it) since this one read the watch: skip it then.
  if due and tonumber(due) <= tonumber(now) then
    local c = redis.call('HMGET', KEYS[i], 'state', 'finished_at', 'callback_url', 'total', 'submitted', 'failed',
                         'unknown', 'cancelled')
    if not c[1] or not c[3] then
      redis.call('ZREM', watch_key, campaign_id)
    elseif c[2] and finished[c[1]] then
      local event = cjson.encode({event = 'campaign.status', campaign_id = campaign_id, state = c[1],
                                  at = tonumber(c[2]), total = tonumber(c[4] or '0'),
                                  submitted = tonumber(c[5] or '0'), failed = tonumber(c[6] or '0'),
                                  unknown = tonumber(c[7] or '0'), cancelled = tonumber(c[8] or '0')})
      enqueue_callback(outbox, now, c[3], KEYS[i], '[' .. event .. ']')
      redis.call('ZREM', watch_key, campaign_id)
      told = told + 1
    else
      redis.call('ZADD', watch_key, 'XX', next_look, campaign_id)
    end
  end
end
return told
