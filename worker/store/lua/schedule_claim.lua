-- Claim jobs that are due in a schedule: 'archive' (final records not yet in the SQL
-- archive) or 'pdfs' (issued jobs whose PDFs are not yet kept). Each is pushed ahead by
-- a visibility timeout, so one whose worker died is taken again.
-- ARGV: prefix, which ('archive' or 'pdfs'), max, visibility seconds.
-- Returns [job id, claim deadline (text), ...]: archive_done removes an entry only while
-- its score is still that deadline (a later change to the job re-adds it with an older
-- score, and it must be archived again).
local P, which, max, visibility = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local key
if which == 'pdfs' then key = K.pdfs(P) else key = K.archive(P) end
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
