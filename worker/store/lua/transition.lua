-- Record a job's new status and fields, if the caller still holds the lane's lease.
-- ARGV: prefix, cuit, token, job id, new status, retention seconds, then field/value pairs
-- Returns 1, 2 when this completed the job's batch, or 0 when the lease is gone (a stale
-- worker writes nothing).
local P, cuit, token, id, new, retention = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local now = now_s()
if redis.call('HGET', K.lane_state(P, cuit), 'token') ~= token then return 0 end
local jk = K.job(P, id)
if redis.call('EXISTS', jk) == 0 then return 0 end
if #ARGV > 6 then
  local fields = {}
  for i = 7, #ARGV do fields[#fields + 1] = ARGV[i] end
  redis.call('HSET', jk, unpack(fields))
end
local _, completed = set_status(P, id, new, now, retention)
if completed then return 2 end
return 1
