"""Housekeeping over a whole key prefix: is Redis there, and leaving it as it was found."""

from __future__ import annotations

from worker.store.lanes import LaneStore
from worker.store.scripts import text

DELETE_CHUNK = 500  # keys per DEL


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
