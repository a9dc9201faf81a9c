"""What a worker records of a claim's calls, always under the lane's fencing token:
an issue, a batch's outcome item by item, a failed call by its failure class (unknown,
rejected, requeued, a paused lane, the service-down window, backoff), and the release of
the lease with the lane's next slot. `worker.submit` decides what to send; this records
what came of it.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

from worker.settings import Settings
from worker.store.jobs import Job, JobStatus
from worker.store.keys import JobField
from worker.store.lanes import LaneStore
from worker.tusfacturas.client import BatchResult
from worker.tusfacturas.errors import (
    AFIP_DOWN_WINDOW,
    AmbiguousError,
    OutcomeKind,
    RateLimitedError,
    RejectedError,
    SequenceError,
    ServiceDownError,
    TenantBlockedError,
    TusFacturasError,
    UnclassifiedError,
)
from worker.tusfacturas.replies import IssuedInvoice

log = logging.getLogger("tfq.submit")

BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 300.0
RECONCILE_DELAY_SECONDS = 2.0  # let a slow call land before asking whether it did


def backoff_seconds(failures: int) -> float:
    """Jittered, capped exponential backoff ("full jitter" on the upper half)."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2.0 ** max(0, failures - 1))
    return ceiling * random.uniform(0.5, 1.0)  # noqa: S311 (jitter, not security)


@dataclass
class Claim:
    """A lane leased to this worker: its fencing token and the CUIT's gap (seconds); once
    the head job's PDV is known, the account its calls count against and that account's
    least interval between calls (seconds)."""

    cuit: str
    token: str
    gap: float
    account: str = ""
    account_interval: float = 0.0
    # When the reply to this claim's invoicing call came (time.monotonic()): the gap runs
    # from then, not from the release after the outcome was recorded.
    replied_at: float | None = None


class OutcomeRecorder:
    """Records outcomes of claims; `worker.submit.Sender` is one (thread-safe likewise)."""

    def __init__(self, store: LaneStore, settings: Settings):
        self.store = store
        self.settings = settings
        self.retention_seconds = settings.result_retention_seconds

    def _batch_outcome(
        self, claim: Claim, batch: list[Job], numero: int, result: BatchResult, sent_at: float
    ) -> None:
        """AFIP's order: an issued prefix, the first failure, then nothing processed.

        When the first failure is itself uncertain (no reply for it, or a reply about
        another invoice), a later item without a reply of its own is uncertain too: it is
        reconciled, never sent again blind.
        """
        failure = result.first_failure
        uncertain = failure is not None and isinstance(result.items[failure], AmbiguousError)
        for i, (job, item) in enumerate(zip(batch, result.items, strict=True)):
            if isinstance(item, IssuedInvoice):
                self._issued(claim, job, numero + i, item, sent_at)
            elif i == failure or (
                uncertain
                and isinstance(item, AmbiguousError)
                and not isinstance(item, UnclassifiedError | SequenceError)
            ):
                self._on_failure(claim, [job], item, numero=numero + i, release=False)
            else:
                self._requeue(claim, job, "not processed: an earlier invoice of the batch failed")

    def _issued(
        self, claim: Claim, job: Job, numero: int, issued: IssuedInvoice, sent_at: float
    ) -> None:
        self.store.set_next_number(claim.cuit, job.punto_venta, job.tipo, numero + 1, claim.token)
        vencimiento = issued.cae_vencimiento
        pago = issued.vencimiento_pago
        fields: dict[str, Any] = {
            JobField.NUMERO: numero,
            JobField.CAE: issued.cae,
            JobField.CAE_VENCIMIENTO: vencimiento.isoformat() if vencimiento else "",
            JobField.PDF_URL: issued.pdf_url,
            JobField.TICKET_URL: issued.ticket_url,
            JobField.AFIP_QR: issued.afip_qr,
            JobField.OBSERVACIONES: issued.observaciones,
            JobField.VENCIMIENTO_PAGO: pago.isoformat() if pago else "",
            JobField.REQUIERE_FEC: {True: "S", False: "N", None: ""}[issued.requiere_fec],
            JobField.MICROSITIOS: json.dumps(issued.micrositios) if issued.micrositios else "",
            JobField.TEST_MODE: "1" if issued.test_mode else "0",
            JobField.ERRORS: "[]",
            JobField.ISSUED_AT: sent_at,
        }
        self._finish(claim, job, JobStatus.ISSUED, fields)

    # --- failures -----------------------------------------------------------------------

    def _on_failure(
        self,
        claim: Claim,
        jobs: list[Job],
        exc: TusFacturasError,
        *,
        numero: int | None = None,
        release: bool = True,
    ) -> None:
        """Record a failed call for `jobs` (numbered from `numero`) by its failure class."""
        now = self.store.now()
        failures = self.store.lane(claim.cuit).failures
        kind = exc.kind
        self._log_attempt(claim, jobs, exc)
        not_before = now
        account_nb: float | None = None
        if kind is OutcomeKind.AMBIGUOUS:
            for i, job in enumerate(jobs):
                # A reply came back: this call is not in flight any more, so reconciling
                # need not wait out the read timeout.
                extra: dict[str, Any] = {JobField.REPLIED: "1" if exc.replied else ""}
                if numero is not None:
                    extra[JobField.NUMERO] = numero + i
                self.store.transition(claim.cuit, claim.token, job.id, JobStatus.UNKNOWN, extra)
            not_before = now + RECONCILE_DELAY_SECONDS
        elif isinstance(exc, RejectedError):
            if len(jobs) > 1:
                # A whole-batch refusal names no culprit: send these one by one.
                self.store.set_solo(claim.cuit, claim.token, len(jobs))
                for job in jobs:
                    self._requeue(claim, job, "batch refused as a whole; retrying one by one")
            else:
                for job in jobs:
                    errors = exc.messages or [exc.detail]
                    self._finish(claim, job, JobStatus.REJECTED, {JobField.ERRORS: errors})
        else:
            for job in jobs:
                self._requeue(claim, job, exc.detail)
            if isinstance(exc, TenantBlockedError):
                until = exc.until.timestamp() if exc.until else None
                self.store.pause(
                    claim.cuit, f"{exc.detail}: {'; '.join(exc.messages)}"[:500], until
                )
            elif isinstance(exc, ServiceDownError) and not self._outage_is_global(claim, exc):
                # One CUIT's word: its own lane waits out the window.
                until = exc.until.timestamp() if exc.until else now + 60
                self.store.pause(
                    claim.cuit,
                    f"{exc.detail} (not yet seen by {self.settings.outage_quorum} CUITs): "
                    f"{'; '.join(exc.messages)}"[:500],
                    until,
                    kind="outage",
                )
            elif isinstance(exc, ServiceDownError):
                # mantenimiento_hasta has minute precision, so a window may read as over
                # while it is not: probes back off with the outage's strikes, for all lanes.
                # The lane itself is released as due: the global window holds every lane
                # back, and lifting it early (a good health check) frees them all at once.
                self.store.set_down(
                    exc.until.timestamp() if exc.until else now + 60,
                    exc.detail,
                    backoff_base_seconds=BACKOFF_BASE_SECONDS,
                    backoff_cap_seconds=BACKOFF_CAP_SECONDS,
                    jitter=random.uniform(0.5, 1.0),  # noqa: S311 (jitter, not security)
                )
            else:  # transient
                failures += 1
                not_before = now + backoff_seconds(failures)
                if isinstance(exc, RateLimitedError):
                    account_nb = now + (exc.retry_after_seconds or 1.0)
        if release:
            self._release(
                claim, not_before=not_before, failures=failures, account_not_before=account_nb
            )

    def _outage_is_global(self, claim: Claim, exc: ServiceDownError) -> bool:
        """Maintenance is everyone's; "AFIP is down" on one CUIT's call becomes everyone's
        once enough CUITs have seen it within AFIP's outage window."""
        if exc.scope == "global":
            return True
        seen = self.store.outage_sighting(claim.cuit, AFIP_DOWN_WINDOW.total_seconds())
        return seen >= self.settings.outage_quorum

    def _requeue(self, claim: Claim, job: Job, reason: str) -> None:
        self.store.transition(
            claim.cuit,
            claim.token,
            job.id,
            JobStatus.QUEUED,
            {JobField.NUMERO: "", JobField.LAST_ERROR: reason},
        )

    # --- records ------------------------------------------------------------------------

    def _log_attempt(self, claim: Claim, jobs: list[Job], exc: TusFacturasError) -> None:
        if isinstance(exc, SequenceError):
            kind = "sequence"
        elif isinstance(exc, UnclassifiedError) and len(jobs) == 1:
            # One invoice's unknown answer: reconciled, then rejected with it unless found.
            # A whole batch's says nothing of each invoice: those not found are sent again.
            kind = "unclassified"
        else:
            kind = str(exc.kind)
        if jobs:
            self.store.record_failed_call(
                claim.cuit,
                claim.token,
                [job.id for job in jobs],
                kind=kind,
                error=exc.detail,
                messages=exc.messages,
            )
        log.warning(
            "call failed",
            extra={
                "cuit": claim.cuit,
                "jobs": [j.id for j in jobs],
                "outcome": kind,
                "detail": exc.detail,
            },
        )

    def _finish(self, claim: Claim, job: Job, status: JobStatus, fields: dict[str, Any]) -> None:
        """Record a final status; the same script queues its result and callback events."""
        if self.store.transition(
            claim.cuit, claim.token, job.id, status, fields, self.retention_seconds
        ):
            log.info(
                "job finished",
                extra={"cuit": claim.cuit, "job_id": job.id, "status": status, "batch": job.batch},
            )

    def _attention(self, claim: Claim, job: Job, reason: str) -> None:
        """A job that needs a human: its lane paused, or its outcome still unknown."""
        self.store.record_attention(job.id, reason)
        log.warning(
            "needs attention", extra={"cuit": claim.cuit, "job_id": job.id, "reason": reason}
        )

    def _release(
        self,
        claim: Claim,
        *,
        not_before: float | None = None,
        failures: int | None = None,
        account_not_before: float | None = None,
    ) -> bool:
        """Unlease the lane; False when the lease was no longer ours."""
        result = self.store.release(
            claim.cuit,
            claim.token,
            not_before=not_before if not_before is not None else self.store.now(),
            gap_seconds=claim.gap,
            failures=failures,
            account=claim.account,
            account_not_before=account_not_before,
            account_interval=claim.account_interval,
            reply_age_seconds=(
                max(0.0, time.monotonic() - claim.replied_at) if claim.replied_at else 0.0
            ),
        )
        return result is not None
