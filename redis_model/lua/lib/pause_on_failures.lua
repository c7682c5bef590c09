-- pause_on_failures(campaign_key, failures_key, share, least, code): a running (or queued) campaign whose
-- recipients failed permanently (`permanent_failed`: refused for a reason a retry would not change) for
-- more than `share` of those attempted, once at least `least` were, pauses itself: state `paused`, and
-- `paused_reason` says why (`code`: the failure of the chunk that crossed the share). It counts from its
-- start, or from where it last paused itself (`guard_from_attempted`, `guard_from_failed`), so that an
-- operator who resumes it gets another `least` before it can pause again. Recipients failed with
-- SUPPRESSED (taken off by the suppression list) were never attempted. Returns true when it paused it.
local function pause_on_failures(campaign_key, failures_key, share, least, code)
  if share <= 0 then return false end
  local c = redis.call('HMGET', campaign_key, 'state', 'submitted', 'failed', 'permanent_failed',
                       'guard_from_attempted', 'guard_from_failed')
  if c[1] ~= 'running' and c[1] ~= 'queued' then return false end
  local suppressed = tonumber(redis.call('HGET', failures_key, 'SUPPRESSED') or '0')
  local all_attempted = tonumber(c[2] or '0') + tonumber(c[3] or '0') - suppressed
  local all_failed = tonumber(c[4] or '0')
  local attempted = all_attempted - tonumber(c[5] or '0')
  local failed = all_failed - tonumber(c[6] or '0')
  if attempted < least or failed <= share * attempted then return false end
  redis.call('HSET', campaign_key, 'state', 'paused', 'guard_from_attempted', all_attempted,
    'guard_from_failed', all_failed, 'paused_reason', string.format(
    'paused by itself: %d of the %d recipients attempted failed for good (%.0f%%, more than %.0f%%), the '
    .. 'last with %s; check the list and the template, then resume it', failed, attempted,
    100 * failed / attempted, 100 * share, code))
  return true
end
