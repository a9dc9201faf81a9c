"""Reading and writing archived jobs. Writes are idempotent upserts keyed on the job id,
so an outbox event handled twice (a worker killed mid-write) writes the same row once."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from worker.archive.schema import ArchivedJob
from worker.store.jobs import JobResult, JobStatus, pdf_links, unpack_envelope
from worker.store.keys import JobField

# Columns an upsert replaces: all but the key. `archived_at` says when the row last changed.
_UPDATED = [c.name for c in ArchivedJob.__table__.columns if c.name != "job_id"]
# A row's attribute names (job_metadata) as the table's column keys (metadata), which a
# Core statement's parameters use.
_COLUMN_KEY = {p.key: p.columns[0].key for p in ArchivedJob.__mapper__.column_attrs}


def _fecha(text: str | None) -> date | None:
    """The API's dd/mm/aaaa date, or None when it is missing or unreadable."""
    if not text:
        return None
    try:
        return datetime.strptime(text, "%d/%m/%Y").date()
    except ValueError:
        return None


def _decimal(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value)).quantize(Decimal("0.01"))
    except InvalidOperation:
        return None


def _when(iso: str | None) -> datetime | None:
    return datetime.fromisoformat(iso) if iso else None


def _int_or_none(value: Any) -> int | None:
    return int(value) if value not in (None, "") else None


def row_from_record(rec: dict[str, Any], *, now: datetime | None = None) -> dict[str, Any]:
    """The archive row of a Redis job record (text fields; `env` compressed bytes).

    The request is the invoice body as sent: the stored envelope (which never holds
    credentials) with the number it was issued as.
    """
    result = JobResult.from_record(rec).model_dump(mode="json")
    env = unpack_envelope(rec[JobField.ENVELOPE])
    request: dict[str, Any] = env["invoice"]
    comprobante = request.get("comprobante", {})
    if result["numero"] is not None:
        comprobante["numero"] = result["numero"]
    return {
        "job_id": result["job_id"],
        "cuit": result["cuit"],
        "external_reference": result["external_reference"],
        "batch": result["batch"],
        "status": result["status"],
        "tipo": result["tipo"],
        "punto_venta": result["punto_venta"],
        "numero": result["numero"],
        "cae": result["cae"],
        "cae_vencimiento": result["cae_vencimiento"],
        "fecha": _fecha(comprobante.get("fecha")),
        "total": _decimal(comprobante.get("total")),
        "moneda": comprobante.get("moneda"),
        "test_mode": result["test_mode"],
        "request": request,
        "result": result,
        "attempt_log": result["attempt_log"],
        "job_metadata": result["metadata"],
        "created_at": _when(result["created_at"]),
        "updated_at": _when(result["updated_at"]),
        "finished_at": _when(result["finished_at"]),
        "archived_at": now or datetime.now(UTC),
        "revision": round(float(rec.get(JobField.UPDATED) or 0) * 1_000_000),
        "pdf_path": rec.get(JobField.PDF_PATH) or None,
        "pdf_sha256": rec.get(JobField.PDF_SHA256) or None,
        "pdf_size": _int_or_none(rec.get(JobField.PDF_SIZE)),
        "ticket_path": rec.get(JobField.TICKET_PATH) or None,
        "ticket_sha256": rec.get(JobField.TICKET_SHA256) or None,
        "ticket_size": _int_or_none(rec.get(JobField.TICKET_SIZE)),
    }


def _plain_json(row: dict[str, Any]) -> dict[str, Any]:
    """JSON columns hold plain JSON: what the API returned may carry Decimals."""
    for column in ("request", "result", "attempt_log", "job_metadata"):
        row[column] = json.loads(json.dumps(row[column], default=str))
    return row


def _upsert_statement(dialect_name: str) -> Any:
    """INSERT .. ON CONFLICT (job_id) DO UPDATE .. WHERE the row is newer, RETURNING job_id."""
    dialect = sqlite if dialect_name == "sqlite" else postgresql
    stmt = dialect.insert(ArchivedJob)
    columns = {ArchivedJob.__table__.columns[name].key: stmt.excluded[name] for name in _UPDATED}
    return stmt.on_conflict_do_update(
        index_elements=[ArchivedJob.job_id],
        set_=columns,
        where=ArchivedJob.revision < stmt.excluded.revision,
    ).returning(ArchivedJob.job_id)


class Archive:
    """The archive on one engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._upsert = _upsert_statement(engine.dialect.name)

    def upsert(self, rows: Sequence[dict[str, Any]]) -> int:
        """Write rows in one transaction; a row replaces an existing one only when it is
        newer (by `revision`). Returns how many rows were written or changed."""
        if not rows:
            return 0
        values = [{_COLUMN_KEY[k]: v for k, v in _plain_json(dict(r)).items()} for r in rows]
        # One statement for any number of rows (executemany, batched by SQLAlchemy's
        # insertmanyvalues), so it is compiled once per process, not once per batch size.
        # RETURNING names the rows inserted or replaced (not those the WHERE kept): a
        # count that both databases give alike, where rowcount does not.
        with self.engine.begin() as conn:
            return len(conn.execute(self._upsert, values).all())

    def get(self, job_id: str) -> ArchivedJob | None:
        with Session(self.engine) as session:
            return session.get(ArchivedJob, job_id)

    def find(self, cuit: str, external_reference: str) -> ArchivedJob | None:
        query = (
            select(ArchivedJob)
            .where(ArchivedJob.cuit == cuit, ArchivedJob.external_reference == external_reference)
            .order_by(ArchivedJob.created_at)
            .limit(1)
        )
        with Session(self.engine) as session:
            return session.scalars(query).first()

    def with_reference_prefix(self, cuit: str, prefix: str) -> list[ArchivedJob]:
        """The CUIT's rows whose external_reference starts with `prefix` (taken literally:
        LIKE's wildcards in it are escaped), oldest first."""
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = (
            select(ArchivedJob)
            .where(
                ArchivedJob.cuit == cuit,
                ArchivedJob.external_reference.like(pattern, escape="\\"),
            )
            .order_by(ArchivedJob.created_at)
        )
        with Session(self.engine) as session:
            return list(session.scalars(query))

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(ArchivedJob)).scalar_one())

    def job_ids(self) -> Iterable[str]:
        with self.engine.connect() as conn:
            yield from conn.execute(select(ArchivedJob.job_id)).scalars()


def archived_result(row: ArchivedJob, public_url: str | None = None) -> JobResult:
    """The result of an archived job, as it was when Redis let it go, with tfq's lasting
    PDF links (`public_url`) and the kept PDF's hash."""
    result = JobResult.model_validate(row.result)
    issued = row.status == JobStatus.ISSUED
    result.pdf_url, result.ticket_url = pdf_links(
        row.job_id,
        public_url,
        pdf=issued and (row.pdf_path is not None or result.pdf_url is not None),
        ticket=issued and (row.ticket_path is not None or result.ticket_url is not None),
    )
    result.pdf_sha256 = row.pdf_sha256
    return result
