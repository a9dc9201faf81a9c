-- Give a lane back after a claim: drop finished head jobs, set the next slot, unlease.
-- ARGV: prefix, cuit, token, not before (epoch s), gap seconds, failures ('' keeps),
--       account name ('' when not yet known), account not before (epoch s, '' for none:
--       a 429 slows that account, every lane of it), account interval (seconds; claims
--       pace the account's lanes by it), reply age (seconds: how long ago, by the
--       worker's own clock, the reply came; 0 when not known)
-- A call made under this lease has had its reply (or failed) by now, or `reply age` ago:
-- that is `last_done` (an age, not a time, so no two clocks are compared).
-- The next slot is max(not before, max(last send, last reply) + gap): AFIP measures the
-- gap between arrivals, and only a reply proves the previous call has arrived.
-- Returns {depth left, next slot} or {'stale'}.
local P, cuit, token = ARGV[1], ARGV[2], ARGV[3]
local not_before, gap, failures = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local account, account_nb, interval = ARGV[7], ARGV[8], tonumber(ARGV[9] or '0')
local reply_age = math.max(0, tonumber(ARGV[10] or '0'))
local now = now_s()
local st = K.lane_state(P, cuit)
if redis.call('HGET', st, 'token') ~= token then return {'stale'} end
local lane = K.lane(P, cuit)
while true do
  local head = redis.call('LINDEX', lane, 0)
  if not head then break end
  local status = redis.call('HGET', K.job(P, head), 'status')
  if status and not is_final(status) then break end
  redis.call('LPOP', lane)
end
local times = redis.call('HMGET', st, 'last_sent', 'claimed', 'last_done')
local last_sent = tonumber(times[1] or '0')
local last_done = tonumber(times[3] or '0')
if last_sent >= tonumber(times[2] or now) then
  last_done = math.max(last_sent, now - reply_age)
  redis.call('HSET', st, 'last_done', last_done)
end
local next_at = math.max(not_before, math.max(last_sent, last_done) + gap)
if failures ~= '' then redis.call('HSET', st, 'failures', failures) end
if account ~= '' then
  local key = K.account(P, account)
  redis.call('HSET', st, 'account', account)
  if interval > 0 then redis.call('HSET', key, 'interval', ARGV[9]) end
  if account_nb ~= '' then
    local cur = tonumber(redis.call('HGET', key, 'next') or '0')
    redis.call('HSET', key, 'next', math.max(cur, tonumber(account_nb)))
  end
end
redis.call('HSET', st, 'next_at', next_at, 'gap', gap)
unlease(P, cuit)
schedule(P, cuit, next_at, now)
return {redis.call('LLEN', lane), tostring(next_at)}
