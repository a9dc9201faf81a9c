-- Claim members of a schedule that are due: callback deliveries or outbox events. Each
-- is pushed ahead by a visibility timeout, so one whose worker died is taken again
-- (handling is idempotent: deliveries have stable ids, receivers dedup on webhook-id).
-- ARGV: prefix, which ('callbacks_due' or 'outbox'), max, visibility seconds.
-- Returns the members.
local P, which, max, visibility = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local key
if which == 'outbox' then key = K.outbox(P) else key = K.callbacks_due(P) end
local now = now_s()
local due = redis.call('ZRANGEBYSCORE', key, '-inf', now, 'LIMIT', 0, max)
for _, member in ipairs(due) do
  redis.call('ZADD', key, now + visibility, member)
end
return due
