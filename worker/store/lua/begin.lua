-- Mark a claim as being worked, once: a redelivered message of the same claim, or a late
-- one of a lease already gone, gets 0 and does nothing (and marks nothing).
-- ARGV: prefix, cuit, token. Returns 1 when this handler may work the lane.
local P, cuit, token = ARGV[1], ARGV[2], ARGV[3]
local st = K.lane_state(P, cuit)
if redis.call('HGET', st, 'token') ~= token then return 0 end
return redis.call('HSETNX', st, 'working', token)
