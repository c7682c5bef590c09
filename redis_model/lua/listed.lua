--! uses listed_positions
-- Which of a page of numbers are on a suppression list now.
-- KEYS: the suppression list. ARGV: E.164 numbers joined by commas.
-- Returns their 1-based positions on the list, ascending.
local list_key = KEYS[1]
local numbers = ARGV[1]

return listed_positions(list_key, numbers, math.huge)
