-- Pause a lane (quota used up, bad credentials, AFIP block, an operator's command).
-- ARGV: prefix, cuit, reason, until (epoch s; '' pauses until resumed), spent job ('' or
--       the job id the spend guard stopped at: resuming gives it a fresh bound), kind
--       ('outage' for a CUIT's own sighting of an outage: a good health check lifts it)
-- Nothing is dropped: the jobs wait in the lane. A timed pause ends by itself.
local P, cuit, reason, untl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local spent, kind = ARGV[5] or '', ARGV[6] or ''
local st = K.lane_state(P, cuit)
redis.call('SADD', K.lanes(P), cuit)
redis.call('HSET', st, 'paused', reason, 'paused_at', now_s())
if kind ~= '' then redis.call('HSET', st, 'paused_kind', kind) else redis.call('HDEL', st, 'paused_kind') end
if spent ~= '' then
  redis.call('HSET', st, 'spent_job', spent)
  redis.call('HINCRBY', K.stats(P), 'lanes:spend_paused', 1)
end
if untl ~= '' then
  redis.call('HSET', st, 'paused_until', untl)
  redis.call('ZADD', K.paused(P), tonumber(untl), cuit)
  if redis.call('ZSCORE', K.ready(P), cuit) then redis.call('ZADD', K.ready(P), tonumber(untl), cuit) end
else
  redis.call('HDEL', st, 'paused_until')
  redis.call('ZADD', K.paused(P), 'inf', cuit)
  redis.call('ZREM', K.ready(P), cuit)
end
return 1
