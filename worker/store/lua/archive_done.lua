-- Settle archived jobs: remove each entry only while it still has the score its claim
-- gave it (see archive_claim.lua).
-- ARGV: prefix, then job id, claim deadline pairs.
-- Returns how many entries were removed.
local P = ARGV[1]
local key = K.archive(P)
local removed = 0
for i = 2, #ARGV, 2 do
  local score = redis.call('ZSCORE', key, ARGV[i])
  if score and math.abs(tonumber(score) - tonumber(ARGV[i + 1])) < 0.0005 then
    redis.call('ZREM', key, ARGV[i])
    removed = removed + 1
  end
end
return removed
