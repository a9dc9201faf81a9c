"""Finding an invoice's kept PDF, wherever its record is: Redis while it holds the job,
the archive after. The intake's `GET /v1/invoices/{id}/pdf` and `tfq invoices pdf` ask
here."""

from __future__ import annotations

from dataclasses import dataclass

from worker.archive.pdfs import PdfKind, PdfStore
from worker.archive.results import ArchivedResults, ArchiveUnavailable
from worker.store.jobs import JobStatus
from worker.store.keys import JobField
from worker.store.lanes import LaneStore


@dataclass(frozen=True)
class PdfLookup:
    """What is known of a job's PDF. `data` is None when there is none to give; `reason`
    then says why, and `pending` whether it is worth asking again later."""

    cuit: str
    data: bytes | None = None
    filename: str = ""
    reason: str = ""
    pending: bool = False


@dataclass(frozen=True)
class _Facts:
    cuit: str
    status: str
    tipo: str
    punto_venta: int
    numero: int | None
    path: str | None
    linked: bool  # the API gave a link for this kind of PDF
    error: str  # the keeper's last error, if it failed
    archived: bool = False  # only the archive holds the job: nothing more will be kept


class Documents:
    def __init__(self, store: LaneStore, archived: ArchivedResults, pdfs: PdfStore):
        self.store = store
        self.archived = archived
        self.pdfs = pdfs

    def pdf(self, job_id: str, kind: PdfKind = PdfKind.A4) -> PdfLookup | None:
        """None when there is no such job; `ArchiveUnavailable` when the archive (or the
        PDF store) cannot be read now."""
        facts = self._facts(job_id, kind)
        if facts is None:
            return None
        if facts.status != JobStatus.ISSUED or facts.path is None:
            reason, pending = _why_none(facts, kind)
            return PdfLookup(facts.cuit, reason=reason, pending=pending)
        try:
            data = self.pdfs.get(facts.path)
        except OSError as exc:
            raise ArchiveUnavailable(f"the PDF store: {type(exc).__name__}") from None
        suffix = "" if kind is PdfKind.A4 else "-ticket"
        name = f"{facts.tipo.replace(' ', '-')}-{facts.punto_venta:05d}-{facts.numero or 0:08d}"
        return PdfLookup(facts.cuit, data=data, filename=f"{name}{suffix}.pdf")

    def _facts(self, job_id: str, kind: PdfKind) -> _Facts | None:
        path_field = JobField.PDF_PATH if kind is PdfKind.A4 else JobField.TICKET_PATH
        url_field = JobField.PDF_URL if kind is PdfKind.A4 else JobField.TICKET_URL
        rec = self.store.job(job_id)
        if rec is not None:
            return _Facts(
                cuit=rec.get(JobField.CUIT, ""),
                status=rec.get(JobField.STATUS, ""),
                tipo=rec.get(JobField.TIPO, ""),
                punto_venta=int(rec.get(JobField.PUNTO_VENTA) or 0),
                numero=int(rec[JobField.NUMERO]) if rec.get(JobField.NUMERO) else None,
                path=rec.get(path_field) or None,
                linked=bool(rec.get(url_field)),
                error=rec.get(JobField.PDF_ERROR, ""),
            )
        row = self.archived.row(job_id)
        if row is None:
            return None
        path = row.pdf_path if kind is PdfKind.A4 else row.ticket_path
        return _Facts(
            cuit=row.cuit,
            status=row.status,
            tipo=row.tipo,
            punto_venta=row.punto_venta,
            numero=row.numero,
            path=path,
            linked=path is not None,
            error="",
            archived=True,
        )


def _why_none(facts: _Facts, kind: PdfKind) -> tuple[str, bool]:
    """Why a job has no kept PDF of this kind, and whether one may still come."""
    if facts.status != JobStatus.ISSUED:
        return f"the job is {facts.status}: only an issued invoice has a PDF", False
    if facts.archived:
        return f"no {kind} was kept for this invoice", False
    if not facts.linked:
        return f"TusFacturas gave no {kind} for this invoice", False
    if facts.error:
        return f"tfq could not keep it yet: {facts.error}", True
    return "not kept yet: tfq downloads it shortly", True
