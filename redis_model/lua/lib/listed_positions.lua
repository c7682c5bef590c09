-- listed_positions(list, numbers, upto): the 1-based positions, among the first `upto` of `numbers`
-- (E.164 numbers joined by commas: one argument to pack, a short reply), of those on the suppression
-- set `list`; at once when the list is empty.
local function listed_positions(list, numbers, upto)
  local listed = {}
  if redis.call('EXISTS', list) == 0 then return listed end
  local i = 0
  for number in string.gmatch(numbers, '[^,]+') do
    i = i + 1
    if i > upto then break end
    if redis.call('SISMEMBER', list, number) == 1 then listed[#listed + 1] = i end
  end
  return listed
end
