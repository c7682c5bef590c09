-- A chunk's claim, as the claims hash stores it: `owner|deadline ms|offset|size`.
-- claim_parts(claim): owner, deadline, offset, size (numbers but the owner).
local function claim_parts(claim)
  local owner, deadline, offset, size = string.match(claim, '^(.*)|(%d+)|(%d+)|(%d+)$')
  return owner, tonumber(deadline), tonumber(offset), tonumber(size)
end

-- claimed_by(claims, job, owner): whether `owner` holds the claim on `job` now.
local function claimed_by(claims, job, owner)
  local claim = redis.call('HGET', claims, job)
  return claim and (claim_parts(claim)) == owner
end
