-- De-duplicate a page of numbers against a set of those already published (adding the page's).
-- KEYS: the seen set. ARGV: the page's numbers joined by commas (one argument to pack, since packing
-- and parsing per number was most of the producer's time).
-- Returns the 1-based positions of the numbers already in the set or earlier in the page, ascending.
-- The set is asked and added to a thousand numbers per command, not one: with AOF, every write
-- command of a script is appended, and a SADD per number costs Redis much more CPU.
local seen_key = KEYS[1]
local numbers = ARGV[1]

local fresh, positions, in_page, seen = {}, {}, {}, {}
local i = 0
for number in string.gmatch(numbers, '[^,]+') do
  i = i + 1
  if in_page[number] then
    seen[#seen + 1] = i
  else
    in_page[number] = true
    fresh[#fresh + 1] = number
    positions[#positions + 1] = i
  end
end
for first = 1, #fresh, 1000 do
  local last = math.min(first + 999, #fresh)
  local known = redis.call('SMISMEMBER', seen_key, unpack(fresh, first, last))
  redis.call('SADD', seen_key, unpack(fresh, first, last))
  for j = 1, #known do
    if known[j] == 1 then seen[#seen + 1] = positions[first + j - 1] end
  end
end
table.sort(seen)
return seen
