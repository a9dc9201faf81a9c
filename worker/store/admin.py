"""Housekeeping over a whole key prefix: is Redis there, and leaving it as it was found."""

from __future__ import annotations

import json
from typing import Any

from worker.store.lanes import LaneStore
from worker.store.scripts import text

DELETE_CHUNK = 500  # keys per DEL
CONSOLE_LOG_KEEP = 100_000  # the console's audit log keeps this many newest actions


def recent_batches(store: LaneStore, limit: int) -> list[tuple[str, float]]:
    """The newest batches (name, created at), newest first."""
    raw = store.r.zrevrange(store.keys.batches, 0, limit - 1, withscores=True)
    return [(text(pair[0]), float(pair[1])) for pair in raw]


def log_console_action(store: LaneStore, entry: dict[str, Any]) -> None:
    """Append one operator action to the console's audit log (capped, newest first)."""
    pipe = store.r.pipeline(transaction=False)
    pipe.lpush(store.keys.console_log, json.dumps(entry, ensure_ascii=False, default=str))
    pipe.ltrim(store.keys.console_log, 0, CONSOLE_LOG_KEEP - 1)
    pipe.execute()


def console_actions(store: LaneStore, limit: int) -> list[dict[str, Any]]:
    """The console's newest logged actions."""
    return [json.loads(text(raw)) for raw in store.r.lrange(store.keys.console_log, 0, limit - 1)]


def ping(store: LaneStore) -> None:
    """Raise `StoreError` when Redis does not answer."""
    store.r.ping()


def forget_prefix(store: LaneStore) -> None:
    """Delete every key under the store's prefix, Celery's results for its jobs, and
    kombu's bindings of its queues: a shared Redis is left as it was (the demo's cleanup).
    """
    r, prefix = store.r, store.keys.prefix
    job_ids = [text(k).rsplit(":", 1)[-1] for k in r.scan_iter(match=store.keys.job("*"))]
    keys = [text(k) for k in r.scan_iter(match=store.keys.pattern(), count=1000)]
    keys += [f"celery-task-meta-{job_id}" for job_id in job_ids]
    # Celery's queues are named after the prefix; kombu keeps their bindings aside.
    keys += [text(k) for k in r.scan_iter(match=f"_kombu.binding*.{prefix}*", count=1000)]
    for start in range(0, len(keys), DELETE_CHUNK):
        r.delete(*keys[start : start + DELETE_CHUNK])
