-- Create callback deliveries, due now, each unless one with its id exists; and, in the same
-- step, settle the outbox entries they were published from. One script, so a crash (or a
-- Redis restart) can never leave a half-made delivery that blocks the real one forever.
-- Keys: outbox, callback (each delivery's hash), callbacks_due, stats.
-- ARGV: prefix, then per delivery six: delivery id, event, cuit, url, body, outbox entry
-- ('' when none). A delivery id of '' settles its outbox entry with nothing to deliver.
-- Returns how many deliveries were created (one that already existed is not).
local P = ARGV[1]
local created = 0
for i = 2, #ARGV, 6 do
  local id, event, cuit, url, body, entry =
    ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  if entry ~= '' then redis.call('ZREM', K.outbox(P), entry) end
  if id ~= '' then
    local ck = K.callback(P, id)
    if redis.call('EXISTS', ck) == 0 then
      redis.call('HSET', ck, 'id', id, 'event', event, 'cuit', cuit, 'url', url, 'body', body,
        'attempts', 0, 'status', 'pending', 'created', now_s())
      redis.call('ZADD', K.callbacks_due(P), 0, id)
      created = created + 1
    end
  end
end
if created > 0 then redis.call('HINCRBY', K.stats(P), 'callbacks:created', created) end
return created
