-- held_for(hold, fingerprint, now, probe_s): why the account's `hold` holds a worker of this
-- configuration (false when it does not), and 1 when this worker is the one to ask the gateway now
-- (the next may in `probe_s`). A refused configuration (key, SID, URL) holds the workers that have it;
-- one with another (a rotated key) sends. A gateway out of reach holds every worker.
local function held_for(hold, fingerprint, now, probe_s)
  local fields = redis.call('HMGET', hold, 'reason', 'key', 'probe_at', 'scope')
  local reason, refused_config, probe_at = fields[1], fields[2], tonumber(fields[3] or '0')
  local scope = fields[4] or 'gateway'  -- a hold that names none holds every worker
  if not reason or (scope == 'config' and refused_config ~= fingerprint) then return false, 0 end
  if probe_at > now then return reason, 0 end
  redis.call('HSET', hold, 'probe_at', now + probe_s)
  return reason, 1
end
