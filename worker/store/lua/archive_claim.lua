-- Claim jobs whose final record is due for the archive. Each is pushed ahead by a
-- visibility timeout, so one whose archiver died is taken again.
-- ARGV: prefix, max, visibility seconds.
-- Returns [job id, claim deadline (text), ...]: archive_done removes an entry only while
-- its score is still that deadline (a later change to the job re-adds it with an older
-- score, and it must be archived again).
local P, max, visibility = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local key = K.archive(P)
local now = now_s()
local deadline = string.format('%.6f', now + visibility)
local due = redis.call('ZRANGEBYSCORE', key, '-inf', now, 'LIMIT', 0, max)
local out = {}
for _, id in ipairs(due) do
  redis.call('ZADD', key, deadline, id)
  out[#out + 1] = id
  out[#out + 1] = deadline
end
return out
