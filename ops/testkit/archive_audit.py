"""Audit the SQL archive and the PDF store against a run's jobs and the sandbox ledger.

After a run: exactly one row per finished job (issued or rejected), each issued invoice
as the ledger has it (numero, CAE, total, punto de venta, tipo), and each issued
invoice's PDF (and ticket, when one was recorded) in the PDF store: a PDF whose sha256 is
the one in its row. Used by the chaos run.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from worker.archive.pdfs import PDF_MAGIC, PdfStore
from worker.archive.schema import ArchivedJob
from worker.store.jobs import JobStatus


@dataclass
class ArchiveAudit:
    rows: int = 0
    missing: list[str] = field(default_factory=list)  # finished jobs without a row
    extra: list[str] = field(default_factory=list)  # rows of no finished job of the run
    mismatches: list[str] = field(default_factory=list)  # rows that disagree with the ledger
    pdfs_kept: int = 0  # issued invoices whose stored PDF is whole and hashed as recorded
    pdfs_missing: list[str] = field(default_factory=list)

    def figures(self) -> dict[str, int]:
        return {
            "archive_rows": self.rows,
            "archive_missing": len(self.missing),
            "archive_extra": len(self.extra),
            "archive_mismatches": len(self.mismatches),
            "pdfs_kept": self.pdfs_kept,
            "pdfs_missing": len(self.pdfs_missing),
        }

    def details(self) -> dict[str, list[str]]:
        return {
            "archive_missing": self.missing[:10],
            "archive_extra": self.extra[:10],
            "archive_mismatches": self.mismatches[:10],
            "pdfs_missing": self.pdfs_missing[:10],
        }


def _cae(value: Any) -> str:
    return str(value or "").strip()


def _total(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(Decimal("0.01"))


def _ledger_disagrees(row: ArchivedJob, entries: list[dict[str, Any]]) -> str | None:
    """Why an issued row is not the ledger's invoice, or None when it is."""
    if not entries:
        return "issued in the archive, not in the sandbox ledger"
    for entry in entries:
        if (
            entry["numero"] == row.numero
            and entry["punto_venta"] == row.punto_venta
            and entry["tipo"] == row.tipo
            and _cae(entry["cae"]) == _cae(row.cae)
            and _total(entry["total"]) == _total(row.total)
        ):
            return None
    first = entries[0]
    return (
        f"archive {row.tipo} {row.punto_venta}-{row.numero} cae={_cae(row.cae)!r} "
        f"total={row.total}; ledger {first['tipo']} {first['punto_venta']}-{first['numero']} "
        f"cae={_cae(first['cae'])!r} total={first['total']}"
    )


def _stored_whole(pdfs: PdfStore, path: str | None, sha256: str | None) -> str | None:
    """Why a recorded file is not in the store as recorded, or None when it is."""
    if not path or not sha256:
        return "no file recorded"
    if not pdfs.exists(path):
        return f"{path} not in the PDF store"
    data = pdfs.get(path)
    if not data.startswith(PDF_MAGIC):
        return f"{path} is not a PDF"
    if hashlib.sha256(data).hexdigest() != sha256:
        return f"{path}'s sha256 is not the row's"
    return None


def audit_archive(
    engine: Engine,
    pdfs: PdfStore,
    finals: dict[str, str],
    references: dict[str, tuple[str, str]],
    ledger_issued: list[dict[str, Any]],
) -> ArchiveAudit:
    """`finals`: job id -> final status of every finished job of the run; `references`:
    job id -> (cuit, external_reference) of every accepted job."""
    with Session(engine) as session:
        rows = list(session.scalars(select(ArchivedJob)))
    by_reference: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for entry in ledger_issued:
        by_reference[(entry["cuit"], entry["external_reference"])].append(entry)
    result = ArchiveAudit(rows=len(rows))
    archived = {row.job_id for row in rows}
    result.missing = sorted(set(finals) - archived)
    for row in rows:
        status = finals.get(row.job_id)
        if status is None:
            result.extra.append(f"{row.job_id} ({row.status})")
            continue
        if row.status != status:
            result.mismatches.append(f"{row.job_id}: archived {row.status}, finished {status}")
            continue
        if (row.cuit, row.external_reference) != references.get(row.job_id):
            result.mismatches.append(f"{row.job_id}: archived under another reference")
            continue
        if status != JobStatus.ISSUED:
            continue
        why = _ledger_disagrees(row, by_reference[(row.cuit, row.external_reference)])
        if why:
            result.mismatches.append(f"{row.job_id}: {why}")
        why = _stored_whole(pdfs, row.pdf_path, row.pdf_sha256)
        if why is None and row.ticket_path:
            why = _stored_whole(pdfs, row.ticket_path, row.ticket_sha256)
        if why:
            result.pdfs_missing.append(f"{row.job_id}: {why}")
        else:
            result.pdfs_kept += 1
    return result
