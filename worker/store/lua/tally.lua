-- Take back a paid call from a lane's count when its answer proved it was not processed
-- (TusFacturas' maintenance refuses every request before doing anything).
-- ARGV: prefix, cuit, token, counter field. Returns the count now, or -1 when stale.
local P, cuit, token, counter = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local st = K.lane_state(P, cuit)
if redis.call('HGET', st, 'token') ~= token then return -1 end
local n = tonumber(redis.call('HGET', st, counter) or '0')
if n > 0 then
  n = redis.call('HINCRBY', st, counter, -1)
end
return n
