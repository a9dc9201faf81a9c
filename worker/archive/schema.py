"""The archive's tables (SQLAlchemy 2.0 declarative). Migrations in `migrations/` create
them; this module is what the code reads and writes through."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Index,
    Integer,
    Numeric,
    String,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class ArchivedJob(Base):
    """One finished job: the request as sent (without credentials), the reply's fields,
    the attempts log, the batch, metadata and timestamps; later the stored PDFs."""

    __tablename__ = "archived_jobs"

    job_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    cuit: Mapped[str] = mapped_column(String(11))
    external_reference: Mapped[str] = mapped_column(String(255))
    batch: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    tipo: Mapped[str] = mapped_column(String(64))
    punto_venta: Mapped[int] = mapped_column(Integer)
    # Set once issued: the number, the CAE and its expiry, as the API answered them.
    numero: Mapped[int | None] = mapped_column(Integer)
    cae: Mapped[str | None] = mapped_column(String(32))
    cae_vencimiento: Mapped[str | None] = mapped_column(String(16))
    # The invoice's own date and total, for period queries and exports.
    fecha: Mapped[date | None] = mapped_column(Date)
    total: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    moneda: Mapped[str | None] = mapped_column(String(8))
    test_mode: Mapped[bool] = mapped_column(Boolean, default=False)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    attempt_log: Mapped[list[Any]] = mapped_column(JSON)
    job_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    archived_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The Redis record's last change, in microseconds since the epoch: a row is replaced
    # only by a newer one, so replaying an old outbox event never undoes a later change.
    revision: Mapped[int] = mapped_column(BigInteger)
    # The PDFs kept in the PDF store: where, their sha256 and size in bytes.
    pdf_path: Mapped[str | None] = mapped_column(String(512))
    pdf_sha256: Mapped[str | None] = mapped_column(String(64))
    pdf_size: Mapped[int | None] = mapped_column(Integer)
    ticket_path: Mapped[str | None] = mapped_column(String(512))
    ticket_sha256: Mapped[str | None] = mapped_column(String(64))
    ticket_size: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        # An issued invoice is one number of one CUIT + PDV + tipo: two rows for it would
        # be a duplicate invoice, which the archive refuses to hide.
        Index(
            "uq_archived_jobs_invoice",
            "cuit",
            "punto_venta",
            "tipo",
            "numero",
            unique=True,
            sqlite_where=text("status = 'issued'"),
            postgresql_where=text("status = 'issued'"),
        ),
        Index("ix_archived_jobs_cuit_fecha", "cuit", "fecha"),
        Index("ix_archived_jobs_cuit_reference", "cuit", "external_reference"),
        Index("ix_archived_jobs_batch", "batch"),
    )
