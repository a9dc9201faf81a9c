-- One tenant saw an outage (e.g. "AFIP is down" on its own call). One tenant's word is
-- not a global signal: its certificate or its account may be the trouble. The outage is
-- global once `quorum` distinct CUITs have seen it within `window` seconds.
-- ARGV: prefix, cuit, window seconds (the caller compares the count with its quorum)
-- Returns the number of distinct CUITs that saw it within the window (this one included).
local P, cuit, window = ARGV[1], ARGV[2], tonumber(ARGV[3])
local now = now_s()
local key = K.sightings(P)
redis.call('ZADD', key, now, cuit)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
redis.call('EXPIRE', key, math.ceil(window) + 60)
return redis.call('ZCARD', key)
