-- A call's turn under the account's pacing, for calls made outside any lane (the PDF
-- keeper's `regenerar_pdf`): they share the per-second limit with every other call.
-- ARGV: prefix, account min interval seconds, max wait seconds, endpoint name (stats).
-- Returns {'go'} | {'wait', seconds}: the caller sleeps that long and asks again.
local P, interval, max_wait, endpoint = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local now = now_s()
local slot = tonumber(redis.call('HGET', K.account(P), 'next') or '0')
if slot > now then return {'wait', tostring(math.min(slot - now, max_wait))} end
redis.call('HSET', K.account(P), 'next', now + interval)
redis.call('HINCRBY', K.stats(P), 'calls:' .. endpoint, 1)
return {'go'}
