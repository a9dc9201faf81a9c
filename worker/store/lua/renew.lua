-- Extend leases still held by their tokens (a live worker's heartbeat during a slow call).
-- ARGV: prefix, lease seconds, then cuit, token pairs. Returns how many were renewed.
local P, lease = ARGV[1], tonumber(ARGV[2])
local now = now_s()
local n = 0
for i = 3, #ARGV, 2 do
  local st = K.lane_state(P, ARGV[i])
  if redis.call('HGET', st, 'token') == ARGV[i + 1] then
    redis.call('HSET', st, 'expires', now + lease)
    redis.call('ZADD', K.leased(P), now + lease, ARGV[i])
    n = n + 1
  end
end
return n
