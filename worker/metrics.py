"""Prometheus metrics.

Two kinds:
- in-process counters of a worker: API calls by endpoint and outcome class with their
  latency, and sends held back (by a CUIT's gap or by account pacing); served by each
  `tfq worker` on TFQ_METRICS_PORT;
- the queue's state, read from Redis at scrape time (`QueueCollector`): jobs by status,
  queued jobs and the oldest one's age, unknown jobs, paused lanes, callbacks pending and
  dead-lettered. Served once, by the intake (`tfq serve`), so sums are not multiplied by
  the number of workers. No per-CUIT labels: thousands of CUITs would explode the series.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from worker.store.keys import Keys
from worker.store.lanes import LaneStore, text

API_CALLS = Counter(
    "tfq_api_calls",
    "TusFacturas API calls by endpoint and outcome class",
    ["endpoint", "outcome"],
)
API_SECONDS = Histogram(
    "tfq_api_call_seconds",
    "TusFacturas API call latency (seconds)",
    ["endpoint"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 100),
)
SENDS_HELD = Counter(
    "tfq_sends_held",
    "Sends held back at the last check: by the CUIT's gap or by account pacing",
    ["reason"],
)

STATUSES = ("queued", "sending", "unknown", "issued", "rejected")


class QueueCollector(Collector):
    """The queue's state from Redis, computed on each scrape."""

    def __init__(self, store: LaneStore):
        self.store = store
        self.keys: Keys = store.keys

    def collect(self) -> Iterator[Metric]:
        k = self.keys
        pipe = self.store.r.pipeline(transaction=False)
        pipe.hgetall(k.stats)
        pipe.zrange(k.pending, 0, 0, withscores=True)
        pipe.zcard(k.paused)
        pipe.zcard(k.ready)
        pipe.zcard(k.leased)
        pipe.zcard(k.callbacks_due)
        pipe.zcard(k.callbacks_dead)
        pipe.hget(k.down, "until")
        pipe.time()
        stats_raw, oldest, paused, ready, leased, cb_due, cb_dead, down_until, now_raw = (
            pipe.execute()
        )
        stats = {text(a): int(text(b)) for a, b in stats_raw.items()}
        now = float(now_raw[0]) + float(now_raw[1]) / 1e6

        jobs = GaugeMetricFamily("tfq_jobs", "Jobs by status", labels=["status"])
        for status in STATUSES:
            jobs.add_metric([status], stats.get(f"jobs:{status}", 0))
        yield jobs
        queued = sum(stats.get(f"jobs:{s}", 0) for s in ("queued", "sending", "unknown"))
        yield GaugeMetricFamily("tfq_queued_jobs", "Jobs not yet issued or rejected", value=queued)
        age = now - float(oldest[0][1]) if oldest else 0.0
        yield GaugeMetricFamily(
            "tfq_oldest_queued_job_age_seconds",
            "Age of the oldest job not yet issued or rejected (seconds)",
            value=max(0.0, age),
        )
        yield GaugeMetricFamily(
            "tfq_unknown_jobs", "Jobs whose last call's outcome is unknown (reconciling)",
            value=stats.get("jobs:unknown", 0),
        )  # fmt: skip
        yield GaugeMetricFamily("tfq_paused_lanes", "CUIT lanes paused", value=paused)
        yield GaugeMetricFamily(
            "tfq_ready_lanes", "CUIT lanes with work waiting for a slot", value=ready
        )
        yield GaugeMetricFamily("tfq_leased_lanes", "CUIT lanes being worked now", value=leased)
        yield GaugeMetricFamily(
            "tfq_service_down", "1 while every lane waits on a maintenance or AFIP outage",
            value=1 if down_until and float(text(down_until)) > now else 0,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "tfq_callbacks_pending", "Callback deliveries not yet delivered", value=cb_due
        )
        yield GaugeMetricFamily(
            "tfq_callbacks_dead", "Callback deliveries dead-lettered", value=cb_dead
        )
        for name, key, doc in (
            ("tfq_invoicing_calls", "calls:invoicing", "Invoicing calls sent (nuevo or lotes)"),
            ("tfq_leases_reaped", "leases:reaped", "Leases taken back from dead workers"),
            ("tfq_callbacks_delivered", "callbacks:delivered", "Callback deliveries delivered"),
            (
                "tfq_lanes_spend_paused",
                "lanes:spend_paused",
                "Lanes the spend guard paused: a job or numeracion reached its bound of paid calls",
            ),
            ("tfq_numeracion_calls", "calls:facturacion/numeracion", "numeracion calls (billed)"),
        ):
            yield CounterMetricFamily(name, doc, value=stats.get(key, 0))


def queue_registry(store: LaneStore) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(QueueCollector(store))
    return registry
