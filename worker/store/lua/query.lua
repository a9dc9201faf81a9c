-- A query call's turn under its account's pacing (queries share the per-second limit
-- with the account's invoicing calls), and its count when the query is a paid one.
-- ARGV: prefix, cuit, token, account name, account min interval seconds, max wait
--       seconds, endpoint name (for the stats), counter field of the lane ('' for none),
--       bound of that counter (0: none)
-- Returns {'go'} | {'wait', seconds} | {'early', time} | {'spent', count} | {'stale'}.
-- 'spent': the lane has made `bound` such calls since its last confirmed issue (or its
-- last resume); nothing is asked.
local P, cuit, token = ARGV[1], ARGV[2], ARGV[3]
local account, interval = K.account(ARGV[1], ARGV[4]), tonumber(ARGV[5])
local max_wait, endpoint = tonumber(ARGV[6]), ARGV[7]
local counter, bound = ARGV[8], tonumber(ARGV[9])
local now = now_s()
local st = K.lane_state(P, cuit)
local s = redis.call('HMGET', st, 'token', 'expires')
if s[1] ~= token or tonumber(s[2] or '0') <= now then return {'stale'} end
if counter ~= '' and bound > 0 then
  local made = tonumber(redis.call('HGET', st, counter) or '0')
  if made >= bound then return {'spent', tostring(made)} end
end
local slot = tonumber(redis.call('HGET', account, 'next') or '0')
if slot > now then
  if slot - now <= max_wait then return {'wait', tostring(slot - now)} end
  return {'early', tostring(slot)}
end
redis.call('HSET', account, 'next', now + interval)
if counter ~= '' then redis.call('HINCRBY', st, counter, 1) end
redis.call('HINCRBY', K.stats(P), 'calls:' .. endpoint, 1)
return {'go'}
