--! uses complete_if_done, claims
-- Claim a job's next chunk before its POST: a lease the settlement must still hold.
-- KEYS: campaign, progress, claims. ARGV: job, owner, now ms, lease ms, offset, size, policy
-- (`hold` or `resend`), "1" to claim only while the campaign is neither paused nor cancelled.
-- Returns {verdict, progress}: `claimed`; `settled` (the progress is elsewhere: resync from it; the
-- caller's own offset when the campaign is gone, expired or purged, so that its run stops there);
-- `paused` or `cancelled` (nothing claimed); `busy` (a live claim of another run); or
-- {'stale', progress, reach, claim}: a claim that outlived its worker covers recipients up to
-- `reach`, whose outcome is unknown under `hold` (the caller settles them with `settle_lost`).
local campaign_key, progress_key, claims_key = KEYS[1], KEYS[2], KEYS[3]
local job, owner, now_ms, lease_ms = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local offset, size, policy, while_running = tonumber(ARGV[5]), ARGV[6], ARGV[7], ARGV[8] == '1'

local campaign = redis.call('HMGET', campaign_key, 'total', 'state')
local total, state = campaign[1], campaign[2]
if not total then return {'settled', offset} end
local settled = tonumber(redis.call('HGET', progress_key, job) or '0')
-- Claims follow the job's progress exactly: a worker elsewhere resyncs from it.
if settled ~= offset then return {'settled', settled} end
-- Pause and cancel take effect at the next claim, whoever steered the campaign.
if while_running and (state == 'paused' or state == 'cancelled') then return {state, settled} end
local claim = redis.call('HGET', claims_key, job)
if claim then
  local _, deadline, stale_offset, stale_size = claim_parts(claim)
  if deadline > now_ms then return {'busy', settled} end
  -- A stale claim: its worker vanished or lost Redis between its POST and its settlement.
  local reach = stale_offset + stale_size
  if policy == 'hold' and reach > settled then
    return {'stale', settled, reach, claim}  -- everything up to its end may have been sent
  elseif policy == 'resend' and stale_offset == settled then
    redis.call('HINCRBY', campaign_key, 'resent', stale_size)
  end
end
redis.call('HSET', claims_key, job, owner .. '|' .. (now_ms + lease_ms) .. '|' .. offset .. '|' .. size)
return {'claimed', settled}
