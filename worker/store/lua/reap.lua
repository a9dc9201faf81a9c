-- Take back leases whose worker died (lease expired without renewal), then count the
-- lanes in flight afresh (claim.lua weighs them against the workers' slots; the count
-- kept by claims, begins and releases is exact again after this).
-- ARGV: prefix, max. Returns the CUITs reaped. Their jobs in 'sending' are reconciled by
-- the next claim before anything else is sent for that CUIT.
local P, max = ARGV[1], tonumber(ARGV[2])
local now = now_s()
local out = {}
for _, cuit in ipairs(redis.call('ZRANGEBYSCORE', K.leased(P), '-inf', now, 'LIMIT', 0, max)) do
  local st = K.lane_state(P, cuit)
  local expires = tonumber(redis.call('HGET', st, 'expires') or '0')
  if expires <= now then
    unlease(P, cuit)
    redis.call('HINCRBY', K.stats(P), 'leases:reaped', 1)
    schedule(P, cuit, now, now)
    out[#out + 1] = cuit
  else
    redis.call('ZREM', K.leased(P), cuit)
  end
end
local counts = {queued = 0}
for _, cuit in ipairs(redis.call('ZRANGE', K.leased(P), 0, -1)) do
  local holder = slot_holder(K.lane_state(P, cuit))
  if holder then counts[holder] = (counts[holder] or 0) + 1 end
end
redis.call('DEL', K.inflight(P))
for holder, n in pairs(counts) do
  if n > 0 and (holder == 'queued' or redis.call('HEXISTS', K.worker_slots(P), holder) == 1) then
    redis.call('HSET', K.inflight(P), holder, n)
  end
end
return out
