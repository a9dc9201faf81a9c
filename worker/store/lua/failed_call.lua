-- Record a failed call's class and the API's messages on its jobs (an unknown job's
-- story, and what a rejection or the spend guard quotes), only while `token` holds the
-- lane: a worker whose lease was taken over must not overwrite the new holder's story.
-- ARGV: prefix, cuit, token, kind, error, messages (JSON list), then job ids.
-- Returns the number of jobs written, or -1 when stale.
local P, cuit, token, kind, err, messages = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if redis.call('HGET', K.lane_state(P, cuit), 'token') ~= token then return -1 end
for i = 7, #ARGV do
  redis.call('HSET', K.job(P, ARGV[i]), 'last_kind', kind, 'last_error', err,
    'last_messages', messages)
end
return #ARGV - 6
