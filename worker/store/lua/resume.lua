-- Resume a paused lane. ARGV: prefix, cuit. Returns 1 if it was paused.
local P, cuit = ARGV[1], ARGV[2]
local now = now_s()
local st = K.lane_state(P, cuit)
local was = redis.call('HDEL', st, 'paused', 'paused_until', 'paused_at', 'paused_kind')
-- A lane the spend guard paused gets a fresh bound: the job it stopped at may be sent
-- again as many times as a new job, and numeracion asked as often.
local spent = redis.call('HGET', st, 'spent_job')
if spent then
  local jk = K.job(P, spent)
  redis.call('HSET', jk, 'attempts_base', redis.call('HGET', jk, 'attempts') or '0')
  redis.call('HDEL', st, 'spent_job')
end
redis.call('HDEL', st, 'numeracion_calls')
redis.call('ZREM', K.paused(P), cuit)
local next_at = tonumber(redis.call('HGET', st, 'next_at') or '0')
schedule(P, cuit, math.max(now, next_at), now)
if was > 0 then return 1 end
return 0
