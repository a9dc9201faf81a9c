-- A job needs a human (its lane paused, or its outcome still unknown): note why on the
-- job and queue an `invoice.attention` event, in one step.
-- ARGV: prefix, job id, reason. Returns 1.
local P, id, reason = ARGV[1], ARGV[2], ARGV[3]
local now = now_s()
redis.call('HSET', K.job(P, id), 'attention', reason)
redis.call('ZADD', K.outbox(P), now, 'invoice.attention|' .. id .. '|' .. math.floor(now))
return 1
