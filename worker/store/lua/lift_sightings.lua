-- The service is healthy again: resume every lane paused by its own sighting of an
-- outage (pause kind 'outage'), and forget the sightings. Other pauses stay.
-- ARGV: prefix. Returns the number of lanes resumed.
local P = ARGV[1]
local now = now_s()
local resumed = 0
for _, cuit in ipairs(redis.call('ZRANGE', K.sightings(P), 0, -1)) do
  local st = K.lane_state(P, cuit)
  if redis.call('HGET', st, 'paused_kind') == 'outage' then
    redis.call('HDEL', st, 'paused', 'paused_until', 'paused_at', 'paused_kind')
    redis.call('ZREM', K.paused(P), cuit)
    local next_at = tonumber(redis.call('HGET', st, 'next_at') or '0')
    schedule(P, cuit, math.max(now, next_at), now)
    resumed = resumed + 1
  end
end
redis.call('DEL', K.sightings(P))
return resumed
