-- After a whole-batch refusal, the lane's head jobs go one by one to find the culprit:
-- `solo` counts how many are still to go alone. Only while `token` holds the lane.
-- ARGV: prefix, cuit, token, mode, count:
--   'set':  `count` head jobs go alone;
--   'take': the next send goes alone if any are still to (and counts one off).
-- Returns 1 when set, or when the next send goes alone; 0 otherwise or when stale.
local P, cuit, token, mode, count = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local st = K.lane_state(P, cuit)
if redis.call('HGET', st, 'token') ~= token then return 0 end
if mode == 'set' then
  redis.call('HSET', st, 'solo', count)
  return 1
end
if tonumber(redis.call('HGET', st, 'solo') or '0') > 0 then
  redis.call('HINCRBY', st, 'solo', -1)
  return 1
end
return 0
