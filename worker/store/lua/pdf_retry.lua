-- A PDF download that failed: try again at `at`, or give up after `max` attempts (the
-- error stays on the record, the job is archived without its PDF and an alert fires).
-- ARGV: prefix, job id, retry time (epoch s), max attempts, error text, regenerations
-- made so far (`regenerar_pdf` calls, each billed).
-- Returns the attempts made so far; negative when this was the last one.
local P, id, at, max, err = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local regenerations = ARGV[6]
local jk = K.job(P, id)
if redis.call('EXISTS', jk) == 0 then
  redis.call('ZREM', K.pdfs(P), id)
  return 0
end
local attempts = redis.call('HINCRBY', jk, 'pdf_attempts', 1)
redis.call('HSET', jk, 'pdf_error', err, 'pdf_regenerations', regenerations, 'updated', now_s())
redis.call('ZADD', K.archive(P), now_s(), id)
if attempts >= max then
  redis.call('ZREM', K.pdfs(P), id)
  redis.call('HINCRBY', K.stats(P), 'pdfs:failed', 1)
  return -attempts
end
redis.call('ZADD', K.pdfs(P), at, id)
return attempts
