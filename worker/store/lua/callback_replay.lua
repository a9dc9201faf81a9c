-- Send a dead-lettered callback delivery again: same webhook-id, attempts start over, due
-- now. Only while it is still dead-lettered, so two replays of one delivery (or a replay
-- racing a settle) queue it once.
-- Keys: callback (the delivery's hash), callbacks_dead, callbacks_due.
-- ARGV: prefix, delivery id.
-- Returns 1 when queued again, 0 when the delivery was not dead-lettered.
local P, id = ARGV[1], ARGV[2]
local ck = K.callback(P, id)
if redis.call('HGET', ck, 'status') ~= 'dead' then return 0 end
if redis.call('ZREM', K.callbacks_dead(P), id) == 0 then return 0 end
redis.call('HSET', ck, 'status', 'pending', 'attempts', 0)
redis.call('ZADD', K.callbacks_due(P), 0, id)
return 1
