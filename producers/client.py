"""The Python way in: submit jobs, read their status, wait for results.

    from producers.client import InvoiceQueue
    q = InvoiceQueue()                       # TFQ_REDIS_URL, TFQ_KEY_PREFIX
    job = q.submit(envelope)                 # InvalidJob lists every field path and reason
    report = q.submit_many(envelopes, batch="nightly-2026-11-23")
    q.wait(job.job_id, timeout=120)          # the job's result

(cuit, external_reference) is the idempotency key: submitting it again returns the
existing job and never makes a second invoice, unless that job was rejected, in which
case a corrected job is created and linked to it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import redis

from worker.accounting.credit_notes import CannotVoid, plan_void
from worker.archive import db
from worker.archive.documents import Documents, PdfLookup
from worker.archive.pdfs import PdfKind, PdfStore
from worker.archive.repository import Archive
from worker.archive.results import ArchivedResults
from worker.errors import FieldError, InvalidJob, unencodable_path
from worker.invoice.envelope import JobEnvelope, validate_envelope
from worker.invoice.rules import argentina_today
from worker.invoice.tables import TIPOS
from worker.settings import Settings, get_settings
from worker.store.durability import durability_warnings
from worker.store.jobs import (
    FINAL,
    JobIds,
    JobResult,
    JobStatus,
    NewJob,
    check_batch_name,
    new_job_id,
    pack_envelope,
)
from worker.store.keys import JobField, Keys
from worker.store.lanes import Lane, LaneStore
from worker.store.queries import LaneRead, lane_reads
from worker.webhooks.safe_http import callback_url_errors

log = logging.getLogger("tfq.producer")

CHUNK = 500  # jobs per enqueue script call
ETA_HEAD = 2000  # jobs of a lane read for its ETA; beyond, extrapolated


@dataclass(frozen=True)
class Submitted:
    job_id: str
    duplicate: bool  # the key already had a live job: this is it, nothing new was created
    previous_job_id: str | None = None  # a resubmission after a rejection links the old job


@dataclass
class BatchReport:
    """What `submit_many` did with each envelope, by its position in the input."""

    accepted: list[tuple[int, str]] = field(default_factory=list)
    duplicates: list[tuple[int, str]] = field(default_factory=list)
    refused: list[tuple[int, list[FieldError]]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.accepted) + len(self.duplicates) + len(self.refused)


class InvoiceQueue:
    def __init__(
        self,
        redis_url: str | None = None,
        *,
        settings: Settings | None = None,
        key_prefix: str | None = None,
        client: redis.Redis | None = None,
    ):
        self.settings = settings or get_settings()
        url = redis_url or self.settings.redis_url
        self.redis = client or redis.Redis.from_url(url, socket_connect_timeout=5)
        self.keys = Keys(key_prefix or self.settings.key_prefix)
        self.store = LaneStore(self.redis, self.keys)

    @cached_property
    def archive(self) -> Archive:
        """The SQL archive of finished jobs (its engine connects on first use)."""
        return Archive(db.engine_for(self.settings.archive_database_url))

    @cached_property
    def archived(self) -> ArchivedResults:
        """Results of jobs Redis has let go, from the archive."""
        return ArchivedResults(self.archive, self.settings.public_url)

    @cached_property
    def documents(self) -> Documents:
        return Documents(self.store, self.archived, PdfStore(self.settings.pdf_store_url))

    # --- submitting -----------------------------------------------------------------------

    def validate(self, envelope: dict[str, Any] | JobEnvelope) -> JobEnvelope:
        """The envelope, checked; `InvalidJob` names every field refused and why."""
        if isinstance(envelope, JobEnvelope):
            envelope = envelope.model_dump(mode="json", exclude_none=True)
        env = validate_envelope(envelope, cf_threshold=self.settings.cf_identification_threshold)
        # Acknowledged means deliverable: a callback that delivery would refuse is refused now.
        errors = callback_url_errors(
            env.callback_url, allow_private=self.settings.callbacks_allow_private
        )
        if errors:
            raise InvalidJob(errors)
        return env

    @property
    def _on_disk_within(self) -> float | None:
        """How long an enqueue may wait for Redis' fsync; None: acknowledge from memory."""
        if self.settings.ack_durability == "off":
            return None
        return self.settings.ack_durability_timeout_seconds

    def durability_warnings(self) -> list[str]:
        """Logs and returns what could lose acknowledged jobs (for a producer's start)."""
        warnings = durability_warnings(
            self.redis, ack_from_memory=self.settings.ack_durability == "off"
        )
        for warning in warnings:
            log.warning(warning)
        return warnings

    @staticmethod
    def _new_job(env: JobEnvelope, job_id: str | None = None) -> NewJob:
        comp = env.invoice.comprobante
        try:
            blob = pack_envelope(env)
        except UnicodeEncodeError:
            # JSON can carry a lone surrogate; it cannot be stored or sent as UTF-8.
            path = unencodable_path(env.model_dump(mode="python")) or ""
            raise InvalidJob([FieldError(path, "not valid UTF-8 text")]) from None
        return NewJob(
            id=job_id or new_job_id(),
            cuit=env.cuit,
            external_reference=comp.external_reference,
            punto_venta=comp.punto_venta,
            tipo=comp.tipo,
            envelope=blob,
        )

    def submit(self, envelope: dict[str, Any] | JobEnvelope, *, batch: str = "") -> Submitted:
        """Queue one job; raises `InvalidJob` (with field paths) when it is refused,
        `InvalidBatchName` for a batch name outside `BATCH_NAME_RULE`, and `NotOnDisk`
        when Redis did not confirm it on disk in time (it is queued: submit it again)."""
        check_batch_name(batch)
        env = self.validate(envelope)
        (enqueued,) = self.store.enqueue(
            [self._new_job(env)], batch, on_disk_within=self._on_disk_within
        )
        return Submitted(enqueued.job_id, enqueued.duplicate, enqueued.previous_job_id or None)

    def submit_many(
        self, envelopes: Iterable[dict[str, Any] | JobEnvelope], *, batch: str = ""
    ) -> BatchReport:
        """Validate and queue many jobs, a few hundred per Redis round trip.

        A refused envelope never stops the others; duplicates (also within the input)
        return the existing job. A batch name outside `BATCH_NAME_RULE` refuses them all
        (`InvalidBatchName`) before any is read. `NotOnDisk` when Redis did not confirm a
        chunk on disk in time: it is queued, and submitting them all again is safe.
        """
        check_batch_name(batch)
        report = BatchReport()
        pending: list[tuple[int, NewJob]] = []
        job_ids = JobIds(CHUNK)
        # One chunk goes to Redis in the background while the next is validated; chunks
        # still reach Redis one after another, in input order.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tfq-enqueue") as pool:
            inflight: Future[None] | None = None
            for index, envelope in enumerate(envelopes):
                try:
                    pending.append((index, self._new_job(self.validate(envelope), job_ids())))
                except InvalidJob as exc:
                    report.refused.append((index, exc.errors))
                if len(pending) >= CHUNK:
                    if inflight is not None:
                        inflight.result()
                    inflight = pool.submit(self._flush, pending, batch, report)
                    pending = []
            if inflight is not None:
                inflight.result()
        self._flush(pending, batch, report)
        return report

    def _flush(self, pending: list[tuple[int, NewJob]], batch: str, report: BatchReport) -> None:
        if not pending:
            return
        results = self.store.enqueue(
            [job for _, job in pending], batch, on_disk_within=self._on_disk_within
        )
        for (index, _), enqueued in zip(pending, results, strict=True):
            (report.duplicates if enqueued.duplicate else report.accepted).append(
                (index, enqueued.job_id)
            )
        pending.clear()

    def void(self, job_id: str, *, reason: str | None = None, amount: Any = None) -> Submitted:
        """Queue the credit note that cancels issued job `job_id` (in full, or `amount`
        of it: total, VAT included, in the invoice's currency) as a job of its own, with
        the invoice's callback URL; `CannotVoid` says why there can be none, `InvalidJob`
        names the note's fields refused. Asking again returns the same note (duplicate)
        (`worker.accounting.credit_notes`)."""
        # One void of an invoice at a time: two could both find it uncredited.
        lock = self.redis.lock(self.keys.void_lock(job_id), timeout=30, blocking_timeout=10)
        if not lock.acquire():
            raise CannotVoid(409, "void-in-progress", f"another void of job {job_id} is running")
        try:
            plan = plan_void(
                self.store, self.archived, job_id,
                today=argentina_today(), reason=reason, amount=amount,
            )  # fmt: skip
            if plan.existing is not None:
                return Submitted(plan.existing, duplicate=True)
            return self.submit(plan.envelope)
        finally:
            with contextlib.suppress(redis.exceptions.LockError):
                lock.release()

    # --- reading --------------------------------------------------------------------------

    def job_id(self, cuit: str, external_reference: str) -> str | None:
        return self.store.job_id_for(cuit, external_reference)

    def status(self, job_id: str) -> dict[str, Any] | None:
        """The job's result so far (`JobResult`'s JSON form). A queued job whose lane is
        paused reads `paused`; any unfinished job of a paused lane carries `paused_reason`
        and `paused_until` (None: until someone resumes it)."""
        result = self.result(job_id)
        return None if result is None else result.model_dump(mode="json")

    def result(self, job_id: str) -> JobResult | None:
        """`status`, typed. Once Redis has let the job's record go, the archive answers
        (`ArchiveUnavailable` when it cannot be read)."""
        rec = self.store.job(job_id)
        if rec is None:
            return self.archived.get(job_id)
        result = JobResult.from_record(rec, self.settings.public_url)
        if result.status not in FINAL:
            lane = self.store.lane(rec[JobField.CUIT])
            if lane.paused:
                if result.status == JobStatus.QUEUED:
                    result.status = JobStatus.PAUSED
                result.paused_reason = lane.paused
                until = lane.paused_until
                result.paused_until = (
                    datetime.fromtimestamp(until, UTC).isoformat() if until is not None else None
                )
        return result

    def pdf(self, job_id: str, kind: PdfKind = PdfKind.A4) -> PdfLookup | None:
        """The invoice's PDF (or ticket) as tfq kept it; None when there is no such job.
        A lookup without `data` says why there is none, and whether to ask again later."""
        return self.documents.pdf(job_id, kind)

    def wait(
        self, job_id: str, timeout: float = 300.0, poll_seconds: float = 0.05
    ) -> dict[str, Any]:
        """Block until the job is issued or rejected; raises TimeoutError with its status."""
        deadline = time.monotonic() + timeout
        delay = poll_seconds
        while True:
            result = self.status(job_id)
            if result is None:
                raise KeyError(f"no job {job_id}")
            if result["status"] in FINAL:
                return result
            if time.monotonic() >= deadline:
                raise TimeoutError(f"job {job_id} still {result['status']} after {timeout} s")
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)

    def _calls_to_empty(
        self, runs: list[tuple[tuple[str, str] | None, int]], depth: int, limit: int = ETA_HEAD
    ) -> int:
        """Invoicing calls a lane still needs, from the runs of (PDV, tipo) of its first
        `limit` jobs: a run of a batchable tipo goes in calls of at most TFQ_BATCH_MAX,
        any other job alone; beyond `limit` jobs, extrapolated."""
        calls = 0
        for key, n in runs:
            batchable = key is not None and key[1] in TIPOS and TIPOS[key[1]].batchable
            calls += math.ceil(n / self.settings.batch_max) if batchable else n
        return calls if depth <= limit else math.ceil(calls * depth / limit)

    def batch(self, name: str) -> dict[str, Any] | None:
        """Counts by status, progress and an ETA from lane depths, gaps and batching."""
        found = self.batch_lanes(name)
        return None if found is None else found[0]

    def batch_lanes(self, name: str) -> tuple[dict[str, Any], list[LaneRead], float] | None:
        """`batch(name)`, the lanes of its CUITs as read for it, and Redis' clock then
        (epoch s): every lane read in a few script calls (`lane_reads`), not a few each."""
        summary = self.store.batch_counts(name)
        if summary is None:
            return None
        total = summary.total
        by_status = summary.counts
        done = by_status[JobStatus.ISSUED] + by_status[JobStatus.REJECTED]
        cuits = self.store.batch_cuits(name)
        paused = 0
        eta_at = 0.0
        now = self.store.now()
        reads = lane_reads(self.store, cuits, head=ETA_HEAD)
        for read in reads:
            lane = Lane.from_hash(read.state)
            if lane.paused:
                paused += 1
            if read.depth == 0:
                continue
            gap = lane.gap or self.settings.cuit_gap_seconds
            calls = self._calls_to_empty(read.runs, read.depth)
            start = max(now, lane.next_at or 0.0)
            eta_at = max(eta_at, start + (calls - 1) * gap)
        created = summary.created or now
        doc = {
            "batch": name,
            "total": total,
            "counts": by_status,
            "done": done,
            "progress": done / total if total else 1.0,
            "paused_lanes": paused,
            "cuits": len(cuits),
            "created_at": datetime.fromtimestamp(created, UTC).isoformat(timespec="seconds"),
            "eta_seconds": round(max(0.0, eta_at - now), 1) if done < total else 0.0,
        }
        return doc, reads, now
