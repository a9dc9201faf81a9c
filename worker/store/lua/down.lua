-- The service is down (maintenance, AFIP down): every lane waits until a time.
-- ARGV: prefix, until (epoch s, from the API; 0 clears), reason, backoff base seconds,
--       backoff cap seconds, jitter (0.5..1, drawn by the caller)
-- A probing round starts when the last window has passed: only then is it a new strike,
-- however many lanes discover the same outage at once. The window is at least the API's
-- end time and at least base × 2^(strikes-1) × jitter (capped): mantenimiento_hasta has
-- minute precision, so a window may read as over while it is not.
-- The record outlives the window by 5 minutes, so strikes add up over one outage.
-- Returns {strikes, window end}.
local P, untl, reason = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local key = K.down(P)
if untl == 0 then
  redis.call('DEL', key)
  wake_dispatchers(P)
  return {0, '0'}
end
local base, cap, jitter = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local now = now_s()
local cur = tonumber(redis.call('HGET', key, 'until') or '0')
local strikes
if now >= cur then
  strikes = redis.call('HINCRBY', key, 'strikes', 1)
else
  strikes = tonumber(redis.call('HGET', key, 'strikes') or '1')
end
local floor = now + math.min(cap, base * 2 ^ (strikes - 1)) * jitter
local window = math.max(cur, untl, floor)
redis.call('HSET', key, 'until', window, 'reason', reason)
redis.call('HSETNX', key, 'since', now)
redis.call('EXPIREAT', key, math.ceil(window + 300))
return {strikes, tostring(window)}
