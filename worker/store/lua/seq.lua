-- Record what the lane knows of the numbering of a CUIT + PDV + tipo, only while `token`
-- holds the lane: a worker whose lease was taken over must not move the number back.
-- ARGV: prefix, cuit, token, "pv:tipo", number, mode:
--   'asked':     numeracion's raw answer, kept until free queries have told which
--                number it means (so a failed query never costs another numeracion);
--   'verified':  the next number, found by those queries;
--   'confirmed': the next number after an issue; the lane's count of numeracion calls
--                starts again;
--   'forget':    the number is in doubt: the next send learns it afresh (number unused).
-- Returns 1 when written.
local P, cuit, token, which, numero, mode = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local st = K.lane_state(P, cuit)
if redis.call('HGET', st, 'token') ~= token then return 0 end
if mode == 'forget' then
  redis.call('DEL', K.seq(P, cuit .. ':' .. which))
  return 1
end
if mode == 'asked' then
  redis.call('HSET', st, 'numeracion:' .. which, numero)
  return 1
end
redis.call('SET', K.seq(P, cuit .. ':' .. which), numero)
redis.call('HDEL', st, 'numeracion:' .. which)
if mode == 'confirmed' then redis.call('HDEL', st, 'numeracion_calls') end
return 1
