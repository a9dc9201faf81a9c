-- Claim lanes whose time has come: lease each with a new fencing token.
-- ARGV: prefix, max claims, lease seconds, lookahead seconds, owner
-- Returns {earliest ready score or '', service down until or '', now, cuit1, token1, ...}.
-- Lanes are taken in ready-time order, so a CUIT with 5,000 jobs never delays one with 1.
local P, max_claims, lease, lookahead, owner = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local now = now_s()
local down = tonumber(redis.call('HGET', K.down(P), 'until') or '0')
local out = {'', '', tostring(now)}
if down > now then
  out[2] = tostring(down)
else
  local due = redis.call('ZRANGEBYSCORE', K.ready(P), '-inf', now + lookahead, 'LIMIT', 0, max_claims)
  for _, cuit in ipairs(due) do
    local st = K.lane_state(P, cuit)
    local s = redis.call('HMGET', st, 'token', 'paused', 'paused_until')
    redis.call('ZREM', K.ready(P), cuit)
    local take = redis.call('LLEN', K.lane(P, cuit)) > 0 and not s[1]
    if take and s[2] then
      if s[3] and tonumber(s[3]) <= now + lookahead then
        -- A timed pause (an AFIP block) has ended: resume by itself.
        redis.call('HDEL', st, 'paused', 'paused_until')
        redis.call('ZREM', K.paused(P), cuit)
      else
        take = false
        if s[3] then redis.call('ZADD', K.ready(P), tonumber(s[3]), cuit) end
      end
    end
    if take then
      local token = redis.call('INCR', K.fence(P))
      redis.call('HDEL', st, 'working')
      redis.call('HSET', st, 'token', token, 'expires', now + lease, 'owner', owner, 'claimed', now)
      redis.call('ZADD', K.leased(P), now + lease, cuit)
      out[#out + 1] = cuit
      out[#out + 1] = tostring(token)
    end
  end
end
local first = redis.call('ZRANGE', K.ready(P), 0, 0, 'WITHSCORES')
if first[2] then out[1] = first[2] end
return out
