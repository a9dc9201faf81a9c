-- Claim lanes whose time has come: lease each with a new fencing token.
-- ARGV: prefix, max claims, lease seconds, lookahead seconds, owner, by capacity ('1':
--       claim no more than the live send workers have free slots, so every claim starts
--       at once and no lease waits in a queue until it is reaped)
-- Returns {earliest ready score or '', service down until or '', now, full, cuit1, token1,
-- ...}; full is '1' when due lanes wait for a free slot (the next release wakes the
-- dispatchers).
-- Lanes are taken in ready-time order, so a CUIT with 5,000 jobs never delays one with 1.
-- A lane whose account (as its last release named it) has no call slot free now is given
-- the account's next unreserved slot instead: an account's lanes take its slots in turn,
-- one claim per slot, and none is claimed only to wait for its account.
local P, max_claims, lease, lookahead, owner = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local by_capacity = ARGV[6] == '1'
local SCAN_MAX = 2000  -- lanes looked at per call, to bound the script's time
local now = now_s()
local horizon = now + lookahead
local down = tonumber(redis.call('HGET', K.down(P), 'until') or '0')
local out = {'', '', tostring(now), ''}

-- Sending slots of the live send workers, less the lanes in flight (claimed and not yet
-- begun, or begun by a live worker: a dead worker's leases do not hold slots).
local function free_slots()
  for _, w in ipairs(redis.call('ZRANGEBYSCORE', K.workers(P), '-inf', now)) do
    drop_worker(P, w)
  end
  local free = 0
  for _, n in ipairs(redis.call('HVALS', K.worker_slots(P))) do free = free + tonumber(n) end
  for _, n in ipairs(redis.call('HVALS', K.inflight(P))) do free = free - math.max(0, tonumber(n)) end
  return free
end

-- Whether the lane may be claimed now under its account's pacing; if not, it gets the
-- account's next unreserved slot (and its place in the ready set at that time).
local function account_turn(cuit, st, name, reserved)
  if not name then return true end
  local ak = K.account(P, name)
  local a = redis.call('HMGET', ak, 'next', 'claim_next', 'interval')
  local interval = tonumber(a[3] or '0')
  if interval <= 0 then return true end
  local hold = tonumber(a[1] or '0')  -- the next call slot, as the last call or a 429 set it
  local free_at = math.max(hold, tonumber(a[2] or '0'))
  if reserved then
    redis.call('HDEL', st, 'reserved')
    -- Its reserved slot has come; the presend waits out a late previous call's remainder.
    if hold <= horizon + interval then return true end
  elseif free_at <= horizon then
    redis.call('HSET', ak, 'claim_next', math.max(free_at, now) + interval)
    return true
  end
  local at = math.max(free_at, now)
  redis.call('HSET', ak, 'claim_next', at + interval)
  redis.call('HSET', st, 'reserved', at)
  redis.call('ZADD', K.ready(P), at, cuit)
  return false
end

if down > now then
  out[2] = tostring(down)
else
  local limit, capped = max_claims, false
  if by_capacity then
    local free = free_slots()
    if free < limit then limit, capped = math.max(0, free), true end
  end
  local claimed, scanned = 0, 0
  while claimed < limit and scanned < SCAN_MAX do
    local due = redis.call('ZRANGEBYSCORE', K.ready(P), '-inf', horizon, 'LIMIT', 0, limit - claimed)
    if #due == 0 then break end
    -- Every lane looked at leaves the due range: claimed, dropped, or given a later time.
    for _, cuit in ipairs(due) do
      scanned = scanned + 1
      local st = K.lane_state(P, cuit)
      local s = redis.call('HMGET', st, 'token', 'paused', 'paused_until', 'account', 'reserved')
      redis.call('ZREM', K.ready(P), cuit)
      local take = redis.call('LLEN', K.lane(P, cuit)) > 0 and not s[1]
      if take and s[2] then
        if s[3] and tonumber(s[3]) <= horizon then
          -- A timed pause (an AFIP block) has ended: resume by itself.
          redis.call('HDEL', st, 'paused', 'paused_until')
          redis.call('ZREM', K.paused(P), cuit)
        else
          take = false
          if s[3] then redis.call('ZADD', K.ready(P), tonumber(s[3]), cuit) end
        end
      end
      if take then take = account_turn(cuit, st, s[4], s[5]) end
      if take then
        local token = redis.call('INCR', K.fence(P))
        redis.call('HDEL', st, 'working', 'worker')
        redis.call('HSET', st, 'token', token, 'expires', now + lease, 'owner', owner, 'claimed', now)
        redis.call('ZADD', K.leased(P), now + lease, cuit)
        out[#out + 1] = cuit
        out[#out + 1] = tostring(token)
        claimed = claimed + 1
      end
    end
  end
  if claimed > 0 then redis.call('HINCRBY', K.inflight(P), 'queued', claimed) end
  if capped and claimed >= limit
      and #redis.call('ZRANGEBYSCORE', K.ready(P), '-inf', horizon, 'LIMIT', 0, 1) > 0 then
    redis.call('SET', K.slots_full(P), '1')
    out[4] = '1'
  end
end
local first = redis.call('ZRANGE', K.ready(P), 0, 0, 'WITHSCORES')
if first[2] then out[1] = first[2] end
return out
