"""Keeping each issued invoice's PDFs: download them the day they are issued, store them,
and record their hashes, so the archive holds the document and not a link that dies.

Issued jobs join the `pdfs` schedule in the same script as their status (lib.lua). The
keeper claims due ones, downloads the A4 PDF and the ticket, and when a link has expired
asks `facturacion/regenerar_pdf` for new ones: a billed call, so it is paced with the
account's other calls and bounded per job. Failed downloads are tried again later, a
bounded number of times.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from worker.archive.pdfs import (
    PdfKind,
    PdfLinkExpired,
    PdfStore,
    PdfUnavailable,
    download_pdf,
    pdf_path,
)
from worker.errors import TfqError
from worker.http_session import EnvironmentOnceSession
from worker.settings import Settings
from worker.store.jobs import JobStatus
from worker.store.keys import JobField
from worker.store.lanes import LaneStore
from worker.store.schedules import Schedule, claim, pdf_kept, pdf_retry, wait_account_turn
from worker.tenants import Pacing
from worker.tenants_live import TenantLookup
from worker.tusfacturas.client import REGENERAR_PDF, TusFacturasClient
from worker.tusfacturas.errors import TusFacturasError

log = logging.getLogger("tfq.pdfs")

# Waits between tries of one job's download (seconds): about a day in all, so an outage
# of the vendor's file server is outlasted; `regenerar_pdf` covers links that died.
RETRY_SECONDS = (30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600)
# The longest the keeper waits for the account's pacing before it lets the job go back.
MAX_PACING_WAIT_SECONDS = 5.0


# Where each kind of PDF is recorded in the job hash: path, sha256, size.
PDF_FIELDS = {
    PdfKind.A4: (JobField.PDF_PATH, JobField.PDF_SHA256, JobField.PDF_SIZE),
    PdfKind.TICKET: (JobField.TICKET_PATH, JobField.TICKET_SHA256, JobField.TICKET_SIZE),
}


class PdfOutcome(StrEnum):
    KEPT = "kept"
    NOTHING = "nothing"  # no link to keep (or kept already)
    RETRY = "retry"
    GAVE_UP = "gave_up"


@dataclass(frozen=True)
class _Links:
    pdf_url: str
    ticket_url: str | None


class PdfKeeper:
    def __init__(
        self,
        store: LaneStore,
        pdfs: PdfStore,
        client: TusFacturasClient,
        tenants: TenantLookup,
        settings: Settings,
    ):
        self.store = store
        self.pdfs = pdfs
        self.client = client
        self.tenants = tenants
        self.settings = settings
        self.session = EnvironmentOnceSession()

    def run_due(self, max_items: int = 20) -> Counter[PdfOutcome]:
        """One pass over the due jobs; returns how each went."""
        outcomes: Counter[PdfOutcome] = Counter()
        due = claim(self.store, Schedule.PDFS, max_items, self.settings.pdf_visibility_seconds)
        for c in due:
            outcomes[self.keep(c.job_id)] += 1
        return outcomes

    def keep(self, job_id: str) -> PdfOutcome:
        rec = self.store.job(job_id)
        if (
            rec is None
            or rec.get(JobField.STATUS) != JobStatus.ISSUED
            or rec.get(JobField.PDF_SHA256)
        ):
            self._settle(job_id)
            return PdfOutcome.NOTHING
        if not rec.get(JobField.PDF_URL):
            self._settle(job_id)  # nothing was linked (the API gave no PDF)
            return PdfOutcome.NOTHING
        regenerations = int(rec.get(JobField.PDF_REGENERATIONS) or 0)
        links = _Links(rec[JobField.PDF_URL], rec.get(JobField.TICKET_URL) or None)
        try:
            try:
                files = self._download(links)
            except PdfLinkExpired:
                if regenerations >= self.settings.pdf_max_regenerations:
                    raise
                links = self._regenerate(rec)
                regenerations += 1
                files = self._download(links)
            fields = self._store(rec, files)
        except (PdfLinkExpired, PdfUnavailable, TusFacturasError, OSError, TfqError) as exc:
            return self._retry(job_id, rec, exc, regenerations)
        fields[JobField.PDF_REGENERATIONS] = regenerations
        self._settle(job_id, fields)
        return PdfOutcome.KEPT

    def _download(self, links: _Links) -> dict[PdfKind, bytes]:
        timeout = self.settings.pdf_download_timeout_seconds
        files = {PdfKind.A4: download_pdf(self.session, links.pdf_url, timeout)}
        if links.ticket_url:
            files[PdfKind.TICKET] = download_pdf(self.session, links.ticket_url, timeout)
        return files

    def _regenerate(self, rec: dict[str, Any]) -> _Links:
        cuit, punto_venta = rec[JobField.CUIT], int(rec[JobField.PUNTO_VENTA])
        pdv = self.tenants.pdv(cuit, punto_venta)
        self._account_turn(self.tenants.pacing(cuit, punto_venta))
        fresh = self.client.regenerar_pdf(pdv, rec[JobField.TIPO], int(rec[JobField.NUMERO]))
        log.info("pdf link regenerated", extra={"job_id": rec[JobField.ID]})
        return _Links(fresh.pdf_url, fresh.ticket_url)

    def _account_turn(self, pacing: Pacing) -> None:
        """Wait for the pacing slot of the PDV's account (bounded): `regenerar_pdf` counts
        against the same per-second limit as the account's other calls."""
        interval = pacing.interval_seconds(self.settings.api_max_rps)
        if not wait_account_turn(
            self.store, pacing.account, interval, REGENERAR_PDF, MAX_PACING_WAIT_SECONDS
        ):
            raise PdfUnavailable("the account's pacing left no turn for regenerar_pdf")

    def _store(self, rec: dict[str, Any], files: dict[PdfKind, bytes]) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        cuit, tipo = rec[JobField.CUIT], rec[JobField.TIPO]
        pv, numero = int(rec[JobField.PUNTO_VENTA]), int(rec[JobField.NUMERO])
        for kind, data in files.items():
            stored = self.pdfs.put(pdf_path(cuit, pv, tipo, numero, kind), data)
            path_field, sha_field, size_field = PDF_FIELDS[kind]
            fields |= {path_field: stored.path, sha_field: stored.sha256, size_field: stored.size}
        return fields

    def _settle(self, job_id: str, fields: dict[str, Any] | None = None) -> None:
        pdf_kept(self.store, job_id, fields)

    def _retry(
        self, job_id: str, rec: dict[str, Any], exc: Exception, regenerations: int
    ) -> PdfOutcome:
        attempts = int(rec.get(JobField.PDF_ATTEMPTS) or 0)
        delay = RETRY_SECONDS[min(attempts, len(RETRY_SECONDS) - 1)]
        error = str(exc) if isinstance(exc, TfqError) else type(exc).__name__
        made = pdf_retry(
            self.store,
            job_id,
            at=self.store.now() + delay,
            max_attempts=self.settings.pdf_max_attempts,
            error=error,
            regenerations=regenerations,
        )
        if made < 0:
            log.error("pdf not kept", extra={"job_id": job_id, "error": error})
            return PdfOutcome.GAVE_UP
        log.warning("pdf download failed", extra={"job_id": job_id, "error": error})
        return PdfOutcome.RETRY
