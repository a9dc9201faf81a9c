-- Record where an issued job's PDFs are kept, and queue the job for the archive again
-- (its row gains the files' hashes).
-- ARGV: prefix, job id, then field/value pairs (pdf_path, pdf_sha256, pdf_size, ...);
-- with no pairs, the job has nothing to keep (no link, or kept already).
-- Returns 1, or 0 when the job record is gone or nothing was recorded.
local P, id = ARGV[1], ARGV[2]
local jk = K.job(P, id)
redis.call('ZREM', K.pdfs(P), id)
if #ARGV < 3 or redis.call('EXISTS', jk) == 0 then return 0 end
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', jk, 'updated', now_s(), unpack(fields))
redis.call('HDEL', jk, 'pdf_error')
redis.call('ZADD', K.archive(P), now_s(), id)
return 1
