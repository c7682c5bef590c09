--! uses redis_now
-- Apply the retention to a campaign that finished before it existed (or any finished campaign with a
-- key left without an expiry): each such key of a completed or failed campaign, or a cancelled one
-- with nothing pending, expires when `expire_finished` would have had it expire: the retention after
-- `finished_at`, or from now when that is not recorded. Past that, the key goes now, and once its
-- hash is gone so does its entry in the index. Keys that expire already, and campaigns not finished,
-- are left as they are.
-- KEYS: the campaign's keys (`keys.retained_keys`, its hash first), then the index by creation.
-- ARGV: the campaign's id, retention (seconds).
-- Returns `applied` (keys given an expiry), `removed` (past its retention: gone now), `expiring`
-- (nothing without one), `unfinished`, `settling` (cancelled, recipients still pending) or `unknown`.
local campaign_keys, index_key = {unpack(KEYS, 1, #KEYS - 1)}, KEYS[#KEYS]
local campaign_key = campaign_keys[1]
local campaign_id, retention = ARGV[1], tonumber(ARGV[2])

local c = redis.call('HMGET', campaign_key, 'state', 'finished_at', 'total', 'submitted', 'failed', 'unknown',
                     'cancelled')
local state = c[1]
if not state then return 'unknown' end
if state ~= 'completed' and state ~= 'failed' and state ~= 'cancelled' then return 'unfinished' end
local pending = tonumber(c[3] or '0')
for i = 4, 7 do pending = pending - tonumber(c[i] or '0') end
if state == 'cancelled' and pending > 0 then return 'settling' end
local bare = {}
for _, key in ipairs(campaign_keys) do
  if redis.call('TTL', key) == -1 then bare[#bare + 1] = key end
end
if #bare == 0 then return 'expiring' end
local at_ms = math.floor(((tonumber(c[2]) or redis_now()) + retention) * 1000)
for _, key in ipairs(bare) do redis.call('PEXPIREAT', key, at_ms) end
if redis.call('EXISTS', campaign_key) == 1 then return 'applied' end
redis.call('ZREM', index_key, campaign_id)
return 'removed'
