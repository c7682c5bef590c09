--! uses redis_now, listed_positions
-- Book a request's turn on the account's time line (GCRA, on Redis's clock), under the lower of the
-- account's limit and its adaptive pace, and within its daily cap; optionally look up the booked
-- numbers' opt-outs too.
-- KEYS: the account's rate hash, its messages by day[, a suppression list]. ARGV: messages wanted, "1" for an urgent
-- request (OTP, TXN), how far ahead (s) bulk may book, the largest share of a second's budget one
-- request may take, "1" when its messages count against the daily cap ("0": a status query)[, the
-- request's numbers joined by commas].
-- Returns {seconds to wait, messages granted, "1" if a limit or pace applied ("2": the daily cap is
-- reached, the wait is until the next UTC day), then the 1-based positions of booked numbers on the
-- suppression list} as strings. Granted "0": nothing was booked (the bulk line is booked further
-- ahead than allowed, or the cap reached); ask again after the wait. An urgent request
-- books on a line of its own, ahead of the bulk backlog, and pushes the bulk line back by as much;
-- since bulk books at most a moment ahead, the account's limit holds within that moment.
local rate_key, daily_key, suppression_key = KEYS[1], KEYS[2], KEYS[3]
local day_s, days_kept = 86400, 31
local wanted, urgent, max_ahead_s, max_share = tonumber(ARGV[1]), ARGV[2] == '1', tonumber(ARGV[3]),
                                               tonumber(ARGV[4])
local counted, numbers = ARGV[5] == '1', ARGV[6]
local now = redis_now()

local function reserve(n)
  local f = redis.call('HMGET', rate_key, 'limit', 'pace', 'pace_at', 'step', 'ceiling', 'tat', 'seen_from',
                       'seen', 'urgent_tat', 'daily')
  local daily = counted and tonumber(f[10] or '0') or 0
  if daily > 0 then  -- what is left of today's cap bounds the request
    local today = math.floor(now / day_s)
    local left = daily - tonumber(redis.call('HGET', daily_key, today) or '0')
    if left <= 0 then return {string.format('%.6f', (today + 1) * day_s - now), '0', '2'} end
    n = math.min(n, left)
  end
  local function booked(granted)  -- today's use, counted with or without a cap (a cap set later counts it)
    if counted and granted > 0 then
      local today = math.floor(now / day_s)
      if redis.call('HINCRBY', daily_key, today, granted) == granted then
        redis.call('HDEL', daily_key, today - days_kept)
      end
    end
  end
  local limit, pace = tonumber(f[1] or '0'), tonumber(f[2] or '0')
  if pace > 0 then  -- additive increase, by the time since the last reservation
    pace = pace + tonumber(f[4]) * (now - tonumber(f[3]))
    if pace >= tonumber(f[5]) then
      redis.call('HDEL', rate_key, 'pace', 'pace_at', 'step', 'ceiling')
      pace = 0
    else
      redis.call('HSET', rate_key, 'pace', tostring(pace), 'pace_at', tostring(now))
    end
  end
  local rate = limit
  if pace > 0 and (rate <= 0 or pace < rate) then rate = pace end
  local bulk_start = math.max(tonumber(f[6] or '0'), now)
  if rate > 0 then
    n = math.max(1, math.min(n, math.floor(rate * max_share)))
    if not urgent and bulk_start - now > max_ahead_s then
      return {string.format('%.6f', bulk_start - now - max_ahead_s), '0', '1'}
    end
  end
  booked(n)
  -- A window of about a second: the messages sent (where a cut starts when there is no limit), the
  -- requests, and the pushbacks among them (whether E403s are a burst or the usual few).
  local seen_from = tonumber(f[7] or '0')
  if now - seen_from >= 1 then
    local last = redis.call('HMGET', rate_key, 'requests', 'pushbacks')
    if seen_from > 0 then
      redis.call('HSET', rate_key, 'seen_rate', tostring(tonumber(f[8] or '0') / (now - seen_from)))
    end
    redis.call('HSET', rate_key, 'seen_from', tostring(now), 'seen', n, 'requests', 1, 'pushbacks', 0,
      'prev_requests', last[1] or 0, 'prev_pushbacks', last[2] or 0)
  else
    redis.call('HINCRBY', rate_key, 'seen', n)
    redis.call('HINCRBY', rate_key, 'requests', 1)
  end
  if rate <= 0 then return {'0', tostring(n), '0'} end
  local start = bulk_start
  if urgent then
    start = math.max(tonumber(f[9] or '0'), now)
    redis.call('HSET', rate_key, 'urgent_tat', string.format('%.6f', start + n / rate))
  end
  redis.call('HSET', rate_key, 'tat', string.format('%.6f', bulk_start + n / rate))
  return {string.format('%.6f', start - now), tostring(n), '1'}
end

local turn = reserve(wanted)
if suppression_key then
  for _, position in ipairs(listed_positions(suppression_key, numbers, tonumber(turn[2]))) do
    turn[#turn + 1] = position
  end
end
return turn
