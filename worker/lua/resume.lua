-- Resume a paused lane. ARGV: prefix, cuit. Returns 1 if it was paused.
local P, cuit = ARGV[1], ARGV[2]
local now = now_s()
local st = K.lane_state(P, cuit)
local was = redis.call('HDEL', st, 'paused', 'paused_until', 'paused_at')
redis.call('ZREM', K.paused(P), cuit)
local next_at = tonumber(redis.call('HGET', st, 'next_at') or '0')
schedule(P, cuit, math.max(now, next_at), now)
if was > 0 then return 1 end
return 0
