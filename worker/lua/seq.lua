-- Record the next number of a CUIT + PDV + tipo, only while `token` holds the lane: a
-- worker whose lease was taken over must not move the number back.
-- ARGV: prefix, cuit, token, "pv:tipo", next number. Returns 1 when written.
local P, cuit, token, which, numero = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('HGET', K.lane_state(P, cuit), 'token') ~= token then return 0 end
redis.call('SET', K.seq(P, cuit .. ':' .. which), numero)
return 1
