-- Enqueue jobs: idempotency check, job record and lane append, in one atomic step.
-- ARGV: prefix, batch name ('' for none), then per job 6 values:
--   job id, cuit, external_reference, punto_venta, tipo, envelope JSON
-- Returns {position (1-based), outcome, job id, previous job id or ''} flattened, only
--   for the jobs not simply created under the id sent: 'duplicate' (the key's job is
--   queued, sending, unknown or issued: its id is returned and nothing is created), or
--   'created' with a previous job (a key whose job was rejected gets a new job linked to
--   the old one). A job the reply does not name was created as sent: a short reply, as
--   the client reads it in Python.
-- A created job is born 'queued' as set_status would record it (status, pending index,
-- batch and global counters); the counters and indexes are written once per call.
local P, batch = ARGV[1], ARGV[2]
local now = now_s()
local out = {}
local created = 0
local pending = {}
local cuits, cuit_list = {}, {}
for i = 3, #ARGV, 6 do
  local position = (i - 3) / 6 + 1
  local id, cuit, ref, pv, tipo, env = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  local idem = K.idem(P, cuit)
  local existing = redis.call('HGET', idem, ref)
  local existing_status = false
  if existing then
    existing_status = redis.call('HGET', K.job(P, existing), 'status')
    -- A record that expired after its retention still counts as issued: never again.
  end
  if existing and existing_status ~= 'rejected' then
    out[#out + 1] = position; out[#out + 1] = 'duplicate'; out[#out + 1] = existing
    out[#out + 1] = ''
  else
    local prev = existing or ''
    redis.call('HSET', idem, ref, id)
    redis.call('HSET', K.job(P, id), 'id', id, 'cuit', cuit, 'ref', ref, 'pv', pv, 'tipo', tipo,
      'batch', batch, 'created', now, 'attempts', 0, 'env', env, 'prev', prev,
      'status', 'queued', 'updated', now)
    if prev ~= '' then redis.call('HSET', K.job(P, prev), 'next', id) end
    if not cuits[cuit] then cuits[cuit] = true; cuit_list[#cuit_list + 1] = cuit end
    pending[#pending + 1] = now; pending[#pending + 1] = id
    local depth = redis.call('RPUSH', K.lane(P, cuit), id)
    if depth == 1 then
      redis.call('SADD', K.lanes(P), cuit)
      local next_at = tonumber(redis.call('HGET', K.lane_state(P, cuit), 'next_at') or '0')
      schedule(P, cuit, math.max(now, next_at), now)
    end
    created = created + 1
    if prev ~= '' then
      out[#out + 1] = position; out[#out + 1] = 'created'; out[#out + 1] = id
      out[#out + 1] = prev
    end
  end
end
if created > 0 then
  -- In slices: unpack's stack is bounded.
  for s = 1, #pending, 400 do
    redis.call('ZADD', K.pending(P), unpack(pending, s, math.min(s + 399, #pending)))
  end
  redis.call('HINCRBY', K.stats(P), 'jobs:queued', created)
  if batch ~= '' then
    local bk = K.batch(P, batch)
    if redis.call('HSETNX', bk, 'created', now) == 1 then
      redis.call('ZADD', K.batches(P), now, batch)
    end
    redis.call('HINCRBY', bk, 'total', created)
    redis.call('HINCRBY', bk, 'queued', created)
    redis.call('HSET', bk, 'updated', now)
    for s = 1, #cuit_list, 400 do
      redis.call('SADD', K.batch_cuits(P, batch), unpack(cuit_list, s, math.min(s + 399, #cuit_list)))
    end
  end
end
return out
