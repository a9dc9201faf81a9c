-- The last check before an invoicing call, and the intent record, in one atomic step.
-- Fails closed: the caller sends only on 'go'.
-- ARGV: prefix, cuit, token, gap seconds, account name, account min interval seconds,
--       max wait seconds, max sends per job (0: no bound), then per job: job id, numero,
--       payload fingerprint
-- Returns {'go', send time} | {'wait', seconds, why} | {'early', time, why} | {'down', until}
-- | {'spent', job index (0-based), sends} | {'stale'}, where why is 'gap' (this CUIT) or
-- 'account' (pacing of all the account's calls).
-- 'spent': that job has had its bound of paid calls (each call counts against the plan,
-- answered or not) since it was queued or last resumed; nothing is sent.
local P, cuit, token = ARGV[1], ARGV[2], ARGV[3]
local gap, account = tonumber(ARGV[4]), K.account(ARGV[1], ARGV[5])
local interval, max_wait = tonumber(ARGV[6]), tonumber(ARGV[7])
local max_sends = tonumber(ARGV[8])
local now = now_s()
local st = K.lane_state(P, cuit)
local s = redis.call('HMGET', st, 'token', 'expires', 'last_sent', 'last_done')
if s[1] ~= token or tonumber(s[2] or '0') <= now then return {'stale'} end
if max_sends > 0 then
  local index = 0
  for i = 9, #ARGV, 3 do
    local a = redis.call('HMGET', K.job(P, ARGV[i]), 'attempts', 'attempts_base')
    local sends = tonumber(a[1] or '0') - tonumber(a[2] or '0')
    if sends >= max_sends then return {'spent', tostring(index), tostring(sends)} end
    index = index + 1
  end
end
local down = tonumber(redis.call('HGET', K.down(P), 'until') or '0')
if down > now then return {'down', tostring(down)} end
-- The gap runs from the later of the last send and the last reply: AFIP measures
-- arrivals, and a request can take a while to arrive.
local earliest = math.max(tonumber(s[3] or '0'), tonumber(s[4] or '0')) + gap
if earliest > now then
  if earliest - now <= max_wait then return {'wait', tostring(earliest - now), 'gap'} end
  return {'early', tostring(earliest), 'gap'}
end
local slot = tonumber(redis.call('HGET', account, 'next') or '0')
if slot > now then
  if slot - now <= max_wait then return {'wait', tostring(slot - now), 'account'} end
  return {'early', tostring(slot), 'account'}
end
redis.call('HSET', account, 'next', now + interval)
redis.call('HSET', st, 'last_sent', now)
redis.call('HINCRBY', K.stats(P), 'calls:invoicing', 1)
for i = 9, #ARGV, 3 do
  local jk = K.job(P, ARGV[i])
  redis.call('HSET', jk, 'numero', ARGV[i + 1], 'fingerprint', ARGV[i + 2], 'sent_at', now, 'fence', token)
  redis.call('HINCRBY', jk, 'attempts', 1)
  set_status(P, ARGV[i], 'sending', now, 0)
end
return {'go', tostring(now)}
