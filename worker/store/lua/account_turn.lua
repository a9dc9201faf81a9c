-- A call's turn under its account's pacing, for calls made outside any lane (the PDF
-- keeper's `regenerar_pdf`): they share the per-second limit with the account's other calls.
-- ARGV: prefix, account name, account min interval seconds, max wait seconds, endpoint
--       name (stats).
-- Returns {'go'} | {'wait', seconds}: the caller sleeps that long and asks again.
local P, account = ARGV[1], K.account(ARGV[1], ARGV[2])
local interval, max_wait, endpoint = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local now = now_s()
local slot = tonumber(redis.call('HGET', account, 'next') or '0')
if slot > now then return {'wait', tostring(math.min(slot - now, max_wait))} end
redis.call('HSET', account, 'next', now + interval)
redis.call('HINCRBY', K.stats(P), 'calls:' .. endpoint, 1)
return {'go'}
