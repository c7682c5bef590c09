--! uses expire_finished
-- complete_if_done(campaign_keys, now, retention): once every recipient of the campaign (its hash
-- `campaign_keys[1]`) is settled, its state becomes `completed`, or `failed` when not one was submitted
-- (each failed, or is unknown), unless it was cancelled; and `finished_at` is set to `now` (Unix
-- seconds). Never while the producer holds its `publishing` lease: the total may still grow. Only
-- the producer's finish or a cancel removes it. A finished campaign's keys (`campaign_keys`) expire
-- `retention` seconds from now.
local function complete_if_done(campaign_keys, now, retention)
  local campaign = campaign_keys[1]
  local c = redis.call('HMGET', campaign, 'total', 'submitted', 'failed', 'unknown', 'cancelled', 'state',
                       'publishing')
  local total, submitted, state, publishing = tonumber(c[1]), tonumber(c[2] or '0'), c[6], c[7]
  local settled = submitted + tonumber(c[3] or '0') + tonumber(c[4] or '0') + tonumber(c[5] or '0')
  if total and not publishing and settled >= total then
    if state ~= 'cancelled' then
      state = (total > 0 and submitted == 0) and 'failed' or 'completed'
      redis.call('HSET', campaign, 'state', state)
    end
    redis.call('HSETNX', campaign, 'finished_at', now)
  end
  expire_finished(campaign_keys, state, retention)
end
