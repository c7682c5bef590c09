-- complete_if_done(campaign, now): once every recipient of the `campaign` hash is settled, its state
-- becomes `completed`, or `failed` when not one was submitted (each failed, or is unknown), unless it
-- was cancelled; and `finished_at` is set to `now` (Unix seconds). Never while the producer holds its
-- `publishing` lease: the total may still grow. Only the producer's finish or a cancel removes it.
local function complete_if_done(campaign, now)
  local c = redis.call('HMGET', campaign, 'total', 'submitted', 'failed', 'unknown', 'cancelled', 'state',
                       'publishing')
  local total, submitted, state, publishing = c[1], tonumber(c[2] or '0'), c[6], c[7]
  if not total or publishing then return end
  total = tonumber(total)
  local settled = submitted + tonumber(c[3] or '0') + tonumber(c[4] or '0') + tonumber(c[5] or '0')
  if settled < total then return end
  if state ~= 'cancelled' then
    redis.call('HSET', campaign, 'state', (total > 0 and submitted == 0) and 'failed' or 'completed')
  end
  redis.call('HSETNX', campaign, 'finished_at', now)
end
