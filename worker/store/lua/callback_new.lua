-- Create a callback delivery, due now, unless one with this id exists; and, in the same
-- step, settle the outbox entry it was published from. One script, so a crash (or a Redis
-- restart) can never leave a half-made delivery that blocks the real one forever.
-- Keys: outbox, callback (the delivery's hash), callbacks_due, stats.
-- ARGV: prefix, delivery id, event, cuit, url, body, outbox entry ('' when none).
-- Returns 1 when created, 0 when the delivery already existed.
local P, id, event, cuit, url, body, entry =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
if entry ~= '' then redis.call('ZREM', K.outbox(P), entry) end
local ck = K.callback(P, id)
if redis.call('EXISTS', ck) == 1 then return 0 end
redis.call('HSET', ck, 'id', id, 'event', event, 'cuit', cuit, 'url', url, 'body', body,
  'attempts', 0, 'status', 'pending', 'created', now_s())
redis.call('ZADD', K.callbacks_due(P), 0, id)
redis.call('HINCRBY', K.stats(P), 'callbacks:created', 1)
return 1
