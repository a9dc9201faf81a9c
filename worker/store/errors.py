"""The failure callers outside worker/store catch when Redis lets them down.

They catch `StoreError` and never import redis themselves: worker/store is the only
place that talks to Redis.
"""

from __future__ import annotations

from redis.exceptions import RedisError

# Any failure talking to Redis: unreachable, timed out, or a command refused.
StoreError = RedisError
