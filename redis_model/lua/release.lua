--! uses claims
-- Give a claim back (nothing was sent), only if it is still the caller's.
-- KEYS: claims. ARGV: job, owner. Returns 1, or 0 if it was not.
local claims_key = KEYS[1]
local job, owner = ARGV[1], ARGV[2]

if not claimed_by(claims_key, job, owner) then return 0 end
redis.call('HDEL', claims_key, job)
return 1
