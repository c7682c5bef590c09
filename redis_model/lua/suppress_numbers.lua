-- Add numbers to an account's suppression list, as `campaign suppress add` does: a list this creates is
-- marked with the current format (an older list keeps its own mark, or none).
-- KEYS: the suppression list, its format mark. ARGV: the format, then the numbers (E.164).
-- Returns the numbers new to the list.
local list_key, format_key = KEYS[1], KEYS[2]
local format = ARGV[1]

local created = redis.call('EXISTS', list_key) == 0
local added = {}
for i = 2, #ARGV do
  if redis.call('SADD', list_key, ARGV[i]) == 1 then added[#added + 1] = ARGV[i] end
end
if created and #added > 0 then redis.call('SET', format_key, format) end
return added
