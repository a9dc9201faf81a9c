"""Prometheus metrics.

Two kinds:
- in-process counters of a worker: API calls by endpoint and outcome class with their
  latency, and sends held back (by a CUIT's gap or by account pacing); served by each
  `tfq worker` on TFQ_METRICS_PORT; with the tenants file's validity and reloads (also
  served by the intake);
- the queue's state, read from Redis at scrape time (`QueueCollector`): jobs by status,
  queued jobs and the oldest one's age, unknown jobs, paused lanes, callbacks pending and
  dead-lettered, the archive's and the PDF keeper's backlogs and the PDFs given up, and
  what the last `tfq audit` of each CUIT found.
  Served once, by the intake (`tfq serve`), so sums are not multiplied by the number of
  workers. No per-CUIT labels: thousands of CUITs would explode the series.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from worker.store.audits import audit_totals
from worker.store.jobs import RECORDED, JobStatus
from worker.store.keys import Stat
from worker.store.lanes import LaneStore, QueueGauges

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
# The tenants file of this process (worker, dispatcher, intake): a refused reload leaves
# the previous file in force, so 0 means "edited, but not taken".
TENANTS_FILE_VALID = Gauge(
    "tfq_tenants_file_valid",
    "1 when the tenants file last read was valid; 0 when a reload was refused",
    multiprocess_mode="mostrecent",
)
TENANTS_RELOADS = Counter(
    "tfq_tenants_reloads",
    "Reloads of a changed tenants file by outcome (ok, invalid)",
    ["outcome"],
)
TENANTS_METRICS = (TENANTS_FILE_VALID, TENANTS_RELOADS)


class QueueCollector(Collector):
    """The queue's state from Redis, computed on each scrape."""

    def __init__(self, store: LaneStore):
        self.store = store

    def collect(self) -> Iterator[Metric]:
        g = self.store.gauges()
        stats, now = g.stats, g.now

        jobs = GaugeMetricFamily("tfq_jobs", "Jobs by status", labels=["status"])
        for status in RECORDED:
            jobs.add_metric([status], stats.get(Stat.jobs(status), 0))
        yield jobs
        unfinished = (JobStatus.QUEUED, JobStatus.SENDING, JobStatus.UNKNOWN)
        queued = sum(stats.get(Stat.jobs(s), 0) for s in unfinished)
        yield GaugeMetricFamily("tfq_queued_jobs", "Jobs not yet issued or rejected", value=queued)
        age = now - g.oldest_pending if g.oldest_pending is not None else 0.0
        yield GaugeMetricFamily(
            "tfq_oldest_queued_job_age_seconds",
            "Age of the oldest job not yet issued or rejected (seconds)",
            value=max(0.0, age),
        )
        yield GaugeMetricFamily(
            "tfq_unknown_jobs", "Jobs whose last call's outcome is unknown (reconciling)",
            value=stats.get(Stat.jobs(JobStatus.UNKNOWN), 0),
        )  # fmt: skip
        yield GaugeMetricFamily("tfq_paused_lanes", "CUIT lanes paused", value=g.paused_lanes)
        yield GaugeMetricFamily(
            "tfq_ready_lanes", "CUIT lanes with work waiting for a slot", value=g.ready_lanes
        )
        yield GaugeMetricFamily(
            "tfq_leased_lanes", "CUIT lanes being worked now", value=g.leased_lanes
        )
        yield GaugeMetricFamily(
            "tfq_send_slots",
            "Sending slots of the live send workers: lanes they can work at once",
            value=g.send_slots,
        )
        yield GaugeMetricFamily(
            "tfq_lanes_in_flight",
            "Claimed lanes holding a sending slot (dispatchers claim no more than the slots)",
            value=g.lanes_in_flight,
        )
        yield GaugeMetricFamily(
            "tfq_service_down", "1 while every lane waits on a maintenance or AFIP outage",
            value=1 if g.down_until is not None and g.down_until > now else 0,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "tfq_callbacks_pending", "Callback deliveries not yet delivered", value=g.callbacks_due
        )
        yield GaugeMetricFamily(
            "tfq_callbacks_dead", "Callback deliveries dead-lettered", value=g.callbacks_dead
        )
        yield from _archive_metrics(g)
        yield from _audit_metrics(g)
        for name, key, doc in (
            ("tfq_invoicing_calls", Stat.INVOICING_CALLS, "Invoicing calls sent (nuevo or lotes)"),
            ("tfq_leases_reaped", Stat.LEASES_REAPED, "Leases taken back from dead workers"),
            ("tfq_callbacks_delivered", Stat.CALLBACKS_DELIVERED, "Callback deliveries delivered"),
            (
                "tfq_lanes_spend_paused",
                Stat.LANES_SPEND_PAUSED,
                "Lanes the spend guard paused: a job or numeracion reached its bound of paid calls",
            ),
            (
                "tfq_numeracion_calls",
                Stat.calls("facturacion/numeracion"),
                "numeracion calls (billed)",
            ),
            (
                "tfq_pdfs_failed",
                Stat.PDFS_FAILED,
                "Issued invoices whose PDF was given up after the last download attempt",
            ),
        ):
            yield CounterMetricFamily(name, doc, value=stats.get(key, 0))


def _audit_metrics(g: QueueGauges) -> Iterator[Metric]:
    """What `tfq audit` found the last time it ran for each CUIT, added up (every kind,
    0 included, so an alert can tell "clean" from "never ran")."""
    totals = audit_totals(g.audits)
    findings = GaugeMetricFamily(
        "tfq_audit_findings",
        "Findings of each CUIT's last tfq audit against TusFacturas, added up, by kind",
        labels=["kind"],
    )
    for kind, count in totals.findings.items():
        findings.add_metric([str(kind)], count)
    yield findings
    yield GaugeMetricFamily(
        "tfq_audit_last_run_timestamp_seconds",
        "When the latest tfq audit finished (epoch seconds; 0: none has run)",
        value=totals.last_run or 0.0,
    )


def _archive_metrics(g: QueueGauges) -> Iterator[Metric]:
    """How far the archive and the PDF keeper are behind (worker/archive/loop.py)."""
    yield GaugeMetricFamily(
        "tfq_archive_backlog",
        "Finished jobs whose row is not yet written to the archive",
        value=g.archive_backlog,
    )
    age = g.now - g.archive_oldest if g.archive_oldest is not None else 0.0
    yield GaugeMetricFamily(
        "tfq_archive_oldest_age_seconds",
        "How long the longest-waiting job of the archive backlog has waited (seconds)",
        value=max(0.0, age),
    )
    yield GaugeMetricFamily(
        "tfq_pdf_backlog", "Issued invoices whose PDFs are not yet kept", value=g.pdf_backlog
    )


def queue_registry(store: LaneStore) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(QueueCollector(store))
    return registry
