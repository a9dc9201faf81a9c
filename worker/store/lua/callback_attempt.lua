-- Count one attempt at sending a callback delivery, just before it is made, unless the
-- delivery is no longer pending: a copy claimed again after the visibility timeout must
-- not touch a settled record (nor bring back an expired one as a stray hash).
-- Keys: callback (the delivery's hash).
-- ARGV: prefix, delivery id.
-- Returns the attempt's number (1 for the first), or 0 when the delivery was not pending.
local P, id = ARGV[1], ARGV[2]
local ck = K.callback(P, id)
if redis.call('HGET', ck, 'status') ~= 'pending' then return 0 end
return redis.call('HINCRBY', ck, 'attempts', 1)
