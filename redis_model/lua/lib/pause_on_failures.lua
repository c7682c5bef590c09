-- pause_on_failures(campaign_key, failures_key, share, least): a running (or queued) campaign whose
-- recipients failed for more than `share` of those attempted, once at least `least` were, pauses itself:
-- state `paused`, and `paused_reason` says why. It counts from its start, or from where it last paused
-- itself (`guard_from_attempted`, `guard_from_failed`), so that an operator who resumes it gets another
-- `least` before it can pause again. Recipients failed with SUPPRESSED (taken off by the suppression
-- list) were never attempted: they count for neither. Returns true when it paused the campaign.
local function pause_on_failures(campaign_key, failures_key, share, least)
  if share <= 0 then return false end
  local c = redis.call('HMGET', campaign_key, 'state', 'submitted', 'failed', 'guard_from_attempted',
                       'guard_from_failed')
  if c[1] ~= 'running' and c[1] ~= 'queued' then return false end
  local suppressed = tonumber(redis.call('HGET', failures_key, 'SUPPRESSED') or '0')
  local all_failed = tonumber(c[3] or '0') - suppressed
  local all_attempted = tonumber(c[2] or '0') + all_failed
  local failed = all_failed - tonumber(c[5] or '0')
  local attempted = all_attempted - tonumber(c[4] or '0')
  if attempted < least or failed <= share * attempted then return false end
  local codes, top, most = redis.call('HGETALL', failures_key), '', 0
  for i = 1, #codes, 2 do
    local n = tonumber(codes[i + 1])
    if codes[i] ~= 'SUPPRESSED' and n > most then top, most = codes[i], n end
  end
  redis.call('HSET', campaign_key, 'state', 'paused', 'guard_from_attempted', all_attempted,
    'guard_from_failed', all_failed, 'paused_reason', string.format(
    'paused by itself: %d of the %d recipients attempted failed (%.0f%%, more than %.0f%%), most with %s; '
    .. 'check the list and the template, then resume it', failed, attempted, 100 * failed / attempted,
    100 * share, top))
  return true
end
