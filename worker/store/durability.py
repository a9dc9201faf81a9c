"""Whether Redis has an acknowledged job on disk (issue 11: acknowledged means durable).

What the server offers (its version, AOF and fsync policy) is read once per connection
pool. Where Redis has WAITAOF (7.2+) and AOF is on, an enqueue waits for the local fsync
before it answers (`JobStore.enqueue`); elsewhere only `appendfsync always` makes an
acknowledgement durable, and `durability_warnings` says so at start.
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass
from typing import Any

import redis

from worker.store.errors import StoreError
from worker.store.scripts import text

log = logging.getLogger("tfq.store")

WAITAOF_SINCE = (7, 2)
NO_APPENDONLY = "Redis runs without appendonly: a restart can lose queued jobs"


class NotOnDisk(StoreError):
    """WAITAOF timed out: the jobs are queued in Redis, but not yet confirmed on disk."""


@dataclass(frozen=True)
class ServerDurability:
    version: tuple[int, ...]
    aof: bool
    appendfsync: str  # always, everysec, no; "" when CONFIG GET is refused

    @property
    def waitaof(self) -> bool:
        """Whether an enqueue can wait for its own fsync (WAITAOF needs AOF on)."""
        return self.aof and self.version >= WAITAOF_SINCE

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))


_known: weakref.WeakKeyDictionary[Any, ServerDurability] = weakref.WeakKeyDictionary()


def server_durability(r: redis.Redis) -> ServerDurability:
    """The server's version and AOF settings, asked once per connection pool."""
    pool = r.connection_pool
    known = _known.get(pool)
    if known is None:
        server = r.info("server")
        persistence = r.info("persistence")
        try:
            fsync = text(r.config_get("appendfsync").get("appendfsync", ""))
        except redis.ResponseError:  # managed Redis may refuse CONFIG
            fsync = ""
        version = tuple(
            int(part) for part in str(server["redis_version"]).split(".")[:3] if part.isdigit()
        )
        known = ServerDurability(version, bool(int(persistence.get("aof_enabled", 0))), fsync)
        _known[pool] = known
    return known


def forget_server(r: redis.Redis) -> None:
    """Ask again next time (the server's configuration changed)."""
    _known.pop(r.connection_pool, None)


def waitaof_command(timeout_seconds: float) -> tuple[str, int, int, int]:
    """WAITAOF numlocal=1 numreplicas=0: this connection's writes fsynced locally."""
    return ("WAITAOF", 1, 0, max(1, round(timeout_seconds * 1000)))


def check_waitaof_reply(reply: Any, timeout_seconds: float) -> None:
    """Raise `NotOnDisk` unless WAITAOF's reply says the local fsync happened."""
    local = int(reply[0]) if isinstance(reply, list | tuple) and reply else 0
    if local < 1:
        raise NotOnDisk(
            f"Redis did not confirm the job(s) on disk within {timeout_seconds:g} s: they "
            "are queued, but a host crash now could lose them. Submitting again is safe "
            "(it returns the same job)"
        )


def durability_warnings(r: redis.Redis, *, ack_from_memory: bool = False) -> list[str]:
    """What could lose or evict acknowledged jobs; [] when nothing."""
    try:
        server = server_durability(r)
        policy = text(r.config_get("maxmemory-policy").get("maxmemory-policy", ""))
    except StoreError:
        return ["could not read Redis' configuration (INFO or CONFIG GET refused)"]
    warnings = []
    if not server.aof:
        warnings.append(NO_APPENDONLY)
    elif server.appendfsync == "":
        if not server.waitaof:
            warnings.append(
                f"Redis {server.version_text} has no WAITAOF and its appendfsync cannot be "
                "read: acknowledged jobs are durable only with appendfsync always"
            )
    elif server.appendfsync != "always":
        loss = "a host crash can lose up to ~1 s of acknowledged jobs"
        if ack_from_memory:
            warnings.append(f"TFQ_ACK_DURABILITY=off and appendfsync {server.appendfsync}: {loss}")
        elif not server.waitaof:
            warnings.append(
                f"Redis {server.version_text} has no WAITAOF (7.2+) and runs appendfsync "
                f"{server.appendfsync}: {loss}; run appendfsync always, or Redis 7.2+"
            )
    if policy != "noeviction":
        warnings.append("Redis maxmemory-policy is not noeviction: jobs could be evicted")
    return warnings
