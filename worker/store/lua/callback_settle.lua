-- Settle one attempt of a callback delivery, unless another copy of it settled it first:
-- a claimed delivery is claimed again after the visibility timeout, so a slow copy may
-- answer after a fast one delivered it (it must neither reschedule nor dead-letter it).
-- Keys: callback (the delivery's hash), callbacks_due, callbacks_dead, stats.
-- ARGV: prefix, delivery id, outcome ('delivered' | 'retry' | 'dead'), detail (HTTP status
-- or error), number (delivered: seconds to keep the record; retry: when, epoch seconds).
-- Returns 1 when settled, 0 when the delivery was no longer pending.
local P, id, outcome, detail, number = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local ck = K.callback(P, id)
if redis.call('HGET', ck, 'status') ~= 'pending' then return 0 end
local now = now_s()
if outcome == 'delivered' then
  redis.call('HSET', ck, 'status', 'delivered', 'http_status', detail, 'delivered', now)
  redis.call('ZREM', K.callbacks_due(P), id)
  redis.call('HINCRBY', K.stats(P), 'callbacks:delivered', 1)
  -- Kept as long as job records, then gone (dead letters wait for a human).
  redis.call('EXPIRE', ck, math.floor(number))
elseif outcome == 'retry' then
  redis.call('HSET', ck, 'last_error', detail, 'next_at', number)
  redis.call('ZADD', K.callbacks_due(P), number, id)
else
  redis.call('HSET', ck, 'status', 'dead', 'last_error', detail)
  redis.call('ZREM', K.callbacks_due(P), id)
  redis.call('ZADD', K.callbacks_dead(P), now, id)
  redis.call('HINCRBY', K.stats(P), 'callbacks:dead', 1)
end
return 1
