-- A send worker says it is alive and how many lanes it can work at once (its slots),
-- or, with 0 slots, that it is leaving. Registrations lapse after `ttl` seconds without
-- renewal; claim.lua then stops counting the worker's slots and its lanes in flight.
-- ARGV: prefix, worker name, slots, ttl seconds. Wakes the dispatchers: capacity changed.
local P, worker, slots, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
if slots > 0 then
  redis.call('ZADD', K.workers(P), now_s() + ttl, worker)
  redis.call('HSET', K.worker_slots(P), worker, slots)
else
  drop_worker(P, worker)
end
wake_dispatchers(P)
return 1
