-- Mark a claim as being worked, once: a redelivered message of the same claim, or a late
-- one of a lease already gone, gets 0 and does nothing (and marks nothing).
-- ARGV: prefix, cuit, token, worker (the registered send worker working it, or ''), head
--       count (0: none).
-- Returns 0 when this handler may not work the lane; else {1, id1, {field, value, ...} or
-- {}, ...}: the lane's first `head count` ids and their job hashes, what the handler reads
-- next anyway, in the same round trip. Its slot moves from the claimed-not-begun
-- count to the worker's own, so the slot is freed if that worker dies.
local P, cuit, token, worker = ARGV[1], ARGV[2], ARGV[3], ARGV[4] or ''
local head_count = tonumber(ARGV[5])
local st = K.lane_state(P, cuit)
if redis.call('HGET', st, 'token') ~= token then return 0 end
if redis.call('HSETNX', st, 'working', token) == 0 then return 0 end
if redis.call('HINCRBY', K.inflight(P), 'queued', -1) <= 0 then
  redis.call('HDEL', K.inflight(P), 'queued')
end
if worker ~= '' and redis.call('HEXISTS', K.worker_slots(P), worker) == 1 then
  redis.call('HSET', st, 'worker', worker)
  redis.call('HINCRBY', K.inflight(P), worker, 1)
end
local out = {1}
if head_count > 0 then  -- (LRANGE 0 -1 would be the whole lane)
  for _, id in ipairs(redis.call('LRANGE', K.lane(P, cuit), 0, head_count - 1)) do
    out[#out + 1] = id
    out[#out + 1] = redis.call('HGETALL', K.job(P, id))
  end
end
return out
