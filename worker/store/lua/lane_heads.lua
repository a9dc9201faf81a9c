-- Read only: the lanes of some CUITs as a batch's ETA and the console read them. Each
-- lane's depth, its state hash, its ready score, and the punto de venta and tipo of its
-- first `head` jobs collapsed into runs of identical ones (a batch's lanes hold long runs
-- of one PDV and tipo: a few values instead of one reply per job).
-- ARGV: prefix, head, then the CUITs.
-- Returns per CUIT: {depth, {state field, value, ...}, ready score or '',
--                    {pv, tipo, count, ...}} ('' pv and tipo: a job whose record is gone).
local P, head = ARGV[1], tonumber(ARGV[2])
local out = {}
for i = 3, #ARGV do
  local cuit = ARGV[i]
  local lane = K.lane(P, cuit)
  local depth = redis.call('LLEN', lane)
  local runs = {}
  if head > 0 and depth > 0 then
    local last_pv, last_tipo, n = nil, nil, 0
    for _, id in ipairs(redis.call('LRANGE', lane, 0, head - 1)) do
      local f = redis.call('HMGET', K.job(P, id), 'pv', 'tipo')
      local pv, tipo = f[1] or '', f[2] or ''
      if pv == last_pv and tipo == last_tipo then
        n = n + 1
      else
        if n > 0 then
          runs[#runs + 1] = last_pv; runs[#runs + 1] = last_tipo; runs[#runs + 1] = n
        end
        last_pv, last_tipo, n = pv, tipo, 1
      end
    end
    if n > 0 then runs[#runs + 1] = last_pv; runs[#runs + 1] = last_tipo; runs[#runs + 1] = n end
  end
  out[#out + 1] = {
    depth, redis.call('HGETALL', K.lane_state(P, cuit)),
    redis.call('ZSCORE', K.ready(P), cuit) or '', runs,
  }
end
return out
