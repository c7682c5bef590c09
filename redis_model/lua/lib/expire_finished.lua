-- expire_finished(campaign_keys, state, retention): a campaign in a finished `state` (`completed`,
-- `failed`, `cancelled`) has each of its keys (`campaign_keys`, `keys.retained_keys`) expire
-- `retention` seconds from now. Every step that finishes a campaign or settles a chunk of a finished
-- one calls it, so that a key written after the first call (a chunk settled cancelled) expires too.
local function expire_finished(campaign_keys, state, retention)
  if state ~= 'completed' and state ~= 'failed' and state ~= 'cancelled' then return end
  for _, key in ipairs(campaign_keys) do redis.call('EXPIRE', key, retention) end
end
