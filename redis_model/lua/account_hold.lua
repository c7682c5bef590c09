--! uses held_for
-- Whether the account is held for this worker (single messages ask before each read: they have no
-- campaign to mark held).
-- KEYS: the account's hold. ARGV: now, the fingerprint of this worker's configuration, probe interval (s).
-- Returns {held reason or false, probe}: `probe` 1 when this worker is the one to ask the gateway now.
local hold_key = KEYS[1]
local now, fingerprint, probe_s = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])

local reason, probe = held_for(hold_key, fingerprint, now, probe_s)
return {reason, probe}
