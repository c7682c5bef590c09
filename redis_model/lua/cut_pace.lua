--! uses redis_now
-- The gateway pushed back (E403, 429): in a burst, cut the account's adaptive pace (AIMD), at most
-- once per cooldown; it grows back linearly to where it was over the recovery time.
-- KEYS: the account's rate hash. ARGV: decrease, recovery s, cooldown s, floor, floor share, burst
-- share, and the fewest requests a burst is judged on.
-- Returns the new pace, or "0" when nothing was cut (not a burst, in the cooldown, or no rate known).
local rate_key = KEYS[1]
local decrease, recovery_s, cooldown_s = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local floor, floor_share, burst_share, burst_min = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]),
                                                   tonumber(ARGV[7])
local now = redis_now()

-- No request for a while: the window's figures are stale, and a lone pushback is no burst.
if now - tonumber(redis.call('HGET', rate_key, 'seen_from') or '0') > 2 then return '0' end
local pushbacks = redis.call('HINCRBY', rate_key, 'pushbacks', 1)
local w = redis.call('HMGET', rate_key, 'requests', 'prev_requests', 'prev_pushbacks')
local requests = tonumber(w[1] or '0') + tonumber(w[2] or '0')
if requests < burst_min or (pushbacks + tonumber(w[3] or '0')) / requests < burst_share then return '0' end
local f = redis.call('HMGET', rate_key, 'limit', 'pace', 'cut_at', 'seen_rate', 'ceiling')
if now - tonumber(f[3] or '0') < cooldown_s then return '0' end
local limit, pace, seen = tonumber(f[1] or '0'), tonumber(f[2] or '0'), tonumber(f[4] or '0')
local base = pace > 0 and pace or limit
if seen > 0 and (base <= 0 or seen < base) then base = seen end
if base <= 0 then return '0' end
local ceiling = tonumber(f[5] or '0')
if ceiling <= 0 then ceiling = limit > 0 and limit or base end
local cut = math.max(floor, ceiling * floor_share, base * decrease)
local step = (ceiling - cut) / recovery_s
redis.call('HSET', rate_key, 'pace', tostring(cut), 'pace_at', tostring(now), 'cut_at', tostring(now),
  'ceiling', tostring(ceiling), 'step', tostring(step))
return tostring(cut)
