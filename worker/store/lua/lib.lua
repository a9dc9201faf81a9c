-- Shared helpers, prepended (after the generated K table) to every script.
-- Times are epoch seconds from Redis' own clock, never a worker's.

local function now_s()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

local function is_final(status)
  return status == 'issued' or status == 'rejected'
end

-- Move a job to `new`, keeping batch and global counters and the attention index right.
-- Final jobs expire after `retention` seconds; nothing unfinished ever expires.
-- Returns the old status and whether this move completed the job's batch (exactly once).
local function set_status(P, id, new, now, retention)
  local jk = K.job(P, id)
  local old = redis.call('HGET', jk, 'status')
  if old == new then return old, false end
  local completed = false
  redis.call('HSET', jk, 'status', new, 'updated', now)
  local batch = redis.call('HGET', jk, 'batch')
  if batch and batch ~= '' then
    local bk = K.batch(P, batch)
    if old then redis.call('HINCRBY', bk, old, -1) end
    redis.call('HINCRBY', bk, new, 1)
    redis.call('HSET', bk, 'updated', now)
    if is_final(new) then
      redis.call('HSET', bk, 'last_final', now)
      local c = redis.call('HMGET', bk, 'total', 'issued', 'rejected')
      local done = tonumber(c[2] or '0') + tonumber(c[3] or '0')
      if done >= tonumber(c[1] or '0') and redis.call('HSETNX', bk, 'completed', now) == 1 then
        completed = true
        redis.call('ZADD', K.outbox(P), now, 'batch.completed|' .. batch .. '|' .. id)
      end
    end
  end
  if old then redis.call('HINCRBY', K.stats(P), 'jobs:' .. old, -1) end
  redis.call('HINCRBY', K.stats(P), 'jobs:' .. new, 1)
  if new == 'rejected' or new == 'unknown' then
    redis.call('ZADD', K.attention(P), now, id)
  else
    redis.call('ZREM', K.attention(P), id)
  end
  if old == false or old == nil then
    redis.call('ZADD', K.pending(P), now, id)
  end
  if is_final(new) then
    -- The outbox: the event is recorded with the status change or not at all.
    redis.call('ZADD', K.outbox(P), now, 'invoice.' .. new .. '|' .. id)
    redis.call('ZADD', K.archive(P), now, id)
    if new == 'issued' then redis.call('ZADD', K.pdfs(P), now, id) end
    redis.call('ZREM', K.pending(P), id)
    redis.call('HSET', jk, 'finished', now)
    if retention and tonumber(retention) and tonumber(retention) > 0 then
      redis.call('EXPIRE', jk, math.floor(tonumber(retention)))
    end
  end
  return old, completed
end

-- Wake the dispatchers' loops (one pending wake-up is enough: they claim all that is due).
local function wake_dispatchers(P)
  redis.call('LPUSH', K.wake(P), '1')
  redis.call('LTRIM', K.wake(P), 0, 0)
end

-- Put a lane back among the ready ones, unless it is empty, leased or paused for good.
local function schedule(P, cuit, at, now)
  local lane = K.lane(P, cuit)
  local st = K.lane_state(P, cuit)
  if redis.call('LLEN', lane) == 0 then
    redis.call('ZREM', K.ready(P), cuit)
    return false
  end
  local s = redis.call('HMGET', st, 'token', 'paused', 'paused_until')
  if s[1] then return false end
  if s[2] then
    if not s[3] then return false end
    at = math.max(at, tonumber(s[3]))
  end
  redis.call('ZADD', K.ready(P), at, cuit)
  -- Wake the dispatchers when the lane is due now, or is now the earliest lane (they
  -- sleep until the earliest slot they knew of).
  if at <= now or redis.call('ZRANGE', K.ready(P), 0, 0)[1] == cuit then
    wake_dispatchers(P)
  end
  return true
end

-- Who holds the sending slot of a leased lane: 'queued' (claimed, never begun), the
-- registered worker that began it, or nil (begun outside any registered worker: not counted).
local function slot_holder(st)
  local w = redis.call('HMGET', st, 'working', 'worker')
  if w[1] then return w[2] or nil end
  return 'queued'
end

-- Forget a send worker: its slots and its lanes in flight no longer count.
local function drop_worker(P, worker)
  redis.call('ZREM', K.workers(P), worker)
  redis.call('HDEL', K.worker_slots(P), worker)
  redis.call('HDEL', K.inflight(P), worker)
end

-- Drop a lane's lease: free its sending slot (the in-flight count claim.lua weighs against
-- the workers' slots) and wake a dispatcher that waits for one.
local function unlease(P, cuit)
  local st = K.lane_state(P, cuit)
  local holder = slot_holder(st)
  if holder and redis.call('HINCRBY', K.inflight(P), holder, -1) <= 0 then
    redis.call('HDEL', K.inflight(P), holder)
  end
  redis.call('HDEL', st, 'token', 'expires', 'owner', 'claimed', 'working', 'worker')
  redis.call('ZREM', K.leased(P), cuit)
  if redis.call('DEL', K.slots_full(P)) == 1 then wake_dispatchers(P) end
end
