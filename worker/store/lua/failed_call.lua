-- Record a failed call's class and the API's messages on its jobs (an unknown job's
-- story, and what a rejection or the spend guard quotes), and append it to each job's
-- attempts log (the newest ATTEMPT_LOG_MAX kept; a clean first try writes none, so it
-- costs nothing on the common path), only while `token` holds the lane: a worker whose
-- lease was taken over must not overwrite the new holder's story.
-- ARGV: prefix, cuit, token, kind, error, messages (JSON list), then job ids.
-- Returns the number of jobs written, or -1 when stale.
local ATTEMPT_LOG_MAX = 20
local P, cuit, token, kind, err, messages = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if redis.call('HGET', K.lane_state(P, cuit), 'token') ~= token then return -1 end
local now = now_s()
redis.call('HINCRBY', K.stats(P), 'failed:' .. kind, 1)  -- Stat.failed: once per call
for i = 7, #ARGV do
  local job = K.job(P, ARGV[i])
  local raw = redis.call('HGET', job, 'log')
  local entries = {}
  if raw and raw ~= '' then
    local ok, decoded = pcall(cjson.decode, raw)
    if ok and type(decoded) == 'table' then entries = decoded end
  end
  entries[#entries + 1] = {at = now, outcome = kind, error = err}
  while #entries > ATTEMPT_LOG_MAX do table.remove(entries, 1) end
  redis.call('HSET', job, 'last_kind', kind, 'last_error', err, 'last_messages', messages,
    'log', cjson.encode(entries))
end
return #ARGV - 6
