-- Take back leases whose worker died (lease expired without renewal).
-- ARGV: prefix, max. Returns the CUITs reaped. Their jobs in 'sending' are reconciled by
-- the next claim before anything else is sent for that CUIT.
local P, max = ARGV[1], tonumber(ARGV[2])
local now = now_s()
local out = {}
for _, cuit in ipairs(redis.call('ZRANGEBYSCORE', K.leased(P), '-inf', now, 'LIMIT', 0, max)) do
  local st = K.lane_state(P, cuit)
  local expires = tonumber(redis.call('HGET', st, 'expires') or '0')
  redis.call('ZREM', K.leased(P), cuit)
  if expires <= now then
    redis.call('HDEL', st, 'token', 'expires', 'owner', 'claimed', 'working')
    redis.call('HINCRBY', K.stats(P), 'leases:reaped', 1)
    schedule(P, cuit, now, now)
    out[#out + 1] = cuit
  end
end
return out
