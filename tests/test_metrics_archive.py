"""The archive's and the PDF keeper's gauges: read from Redis by the store, exported by
the intake's queue collector."""

from __future__ import annotations

import redis
from prometheus_client import generate_latest

from ops.testkit.harness import unique_prefix
from worker.metrics import queue_registry
from worker.store.keys import JobField, Keys, Stat
from worker.store.lanes import LaneStore


def test_archive_and_pdf_gauges(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    keys = Keys(unique_prefix("metrics"))
    store = LaneStore(client, keys)
    try:
        empty = store.gauges()
        assert (empty.archive_backlog, empty.archive_oldest, empty.pdf_backlog) == (0, None, 0)
        now = store.now()
        # One job waiting since long ago whose claim pushed its score ahead, one fresh.
        client.hset(keys.job("old"), JobField.UPDATED, now - 900)
        client.hset(keys.job("new"), JobField.UPDATED, now - 1)
        client.zadd(keys.archive, {"new": now - 1, "old": now + 120})
        client.zadd(keys.pdfs, {"new": now - 1})
        client.hincrby(keys.stats, Stat.PDFS_FAILED, 2)
        g = store.gauges()
        assert (g.archive_backlog, g.pdf_backlog) == (2, 1)
        assert g.archive_oldest is not None
        assert abs(g.archive_oldest - (now - 900)) < 1

        text = generate_latest(queue_registry(store)).decode()
        values = {
            line.split(" ")[0]: float(line.split(" ")[1])
            for line in text.splitlines()
            if line.startswith(("tfq_archive", "tfq_pdf"))
        }
        assert values["tfq_archive_backlog"] == 2
        assert 899 < values["tfq_archive_oldest_age_seconds"] < 960
        assert values["tfq_pdf_backlog"] == 1
        assert values["tfq_pdfs_failed_total"] == 2
    finally:
        for key in client.scan_iter(f"{keys.prefix}*"):
            client.delete(key)
        client.close()
